"""Prefect tasks of the ``mine-and-train`` and ``pretrain`` flows: training (in-process, Ray Train,
or a Ray Job on an existing cluster) and the report artifacts.

Tasks receive the validated :class:`~unsamv2.train.config.TrainConfig` (and
:class:`~unsamv2.backends.ray_train.RayTrainOptions`) and return URIs, ids and numbers; the
training recipe writes its checkpoints and ``summary.json`` itself, so a retried task resumes from
the last checkpoint.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from unsamv2.backends.ray_train import RayTrainOptions
from unsamv2.eval.result import EvalResult
from unsamv2.jobs.train import TrainBackend
from unsamv2.train.config import TrainConfig


def _small(summary: dict[str, Any]) -> dict[str, Any]:
    """A training summary without the per-step loss list (first and last loss instead)."""
    losses = summary.get("losses") or []
    out = {k: v for k, v in summary.items() if k != "losses"}
    out["first_loss"] = losses[0] if losses else None
    out["final_loss"] = losses[-1] if losses else None
    return out


@task(name="train-adapter", retries=1, retry_delay_seconds=10)
def train_adapter(config: TrainConfig, backend: TrainBackend = "local", ray: RayTrainOptions | None = None,
                  run_key: str = "train") -> dict[str, Any]:
    """Run the training job (:func:`unsamv2.jobs.train.run_train`) here (``local``, with a progress
    artifact) or on Ray Train workers (``ray``, holding the GPU slots); resumes from the output's
    latest checkpoint."""
    from unsamv2.jobs.train import run_train

    logger = get_run_logger()
    if backend == "ray":
        from tasks.limits import ray_gpu_slots
        from unsamv2.backends.ray_train import worker_gpus

        options = ray or RayTrainOptions()
        with ray_gpu_slots(options.workers, worker_gpus(options)):  # GPU jobs queue in Prefect
            summary = run_train(config, backend="ray", ray=options, resume=True)
    else:
        artifact = create_progress_artifact(0.0, key=f"{run_key}-progress", description=f"steps of {config.output_uri}")
        every = max(1, config.max_steps // 20)

        def progress(log: Any) -> None:
            if log.step % every == 0 or log.step == log.max_steps:
                update_progress_artifact(artifact, 100.0 * log.step / log.max_steps)
                logger.info("step %d/%d loss %.4f lr %.2e", log.step, log.max_steps, log.losses["total"], log.lr)

        summary = run_train(config, resume=True, on_step=progress)
    logger.info("trained to step %d in %.1f s; checkpoint %s", summary["steps"], summary["seconds"],
                summary["checkpoint_uri"])
    return _small(summary)


#: The same task for base pretraining (``pretrain`` flow), under its own name in the Prefect UI.
pretrain_base = train_adapter.with_options(name="pretrain-base")


@task(name="submit-training-job", retries=2, retry_delay_seconds=30)
def submit_training_job(config: TrainConfig, ray: RayTrainOptions, address: str,
                        poll_seconds: float = 5.0) -> dict[str, Any]:
    """Run ``unsamv2 train --backend ray`` with ``config`` and the ``ray`` options as a Ray Job on
    the cluster at ``address`` (its job server URL), forwarding the job's log to this flow's logger.

    The submission id is stable for this flow run and config, so a Prefect retry attaches to the
    job it already started instead of starting a second one.
    """
    from prefect.runtime import flow_run

    from tasks.limits import ray_gpu_slots
    from unsamv2.backends.ray_jobs import (
        follow_job,
        job_message,
        job_runtime_env,
        stable_submission_id,
        submit_or_attach,
        train_entrypoint,
    )
    from unsamv2.data import storage
    from unsamv2.train.summary import read_summary

    logger = get_run_logger()
    config_uri = storage.join(config.output_uri, "train_config.json")
    storage.write_text(config_uri, config.to_json())
    base = stable_submission_id("unsamv2-train", str(flow_run.id or "no-flow-run"), config.config_hash())
    entry = train_entrypoint(config_uri, workers=ray.workers, cpus_per_worker=ray.cpus_per_worker,
                             gpus_per_worker=ray.gpus_per_worker,
                             run_name=ray.run_name or f"unsamv2-train-{config.config_hash()}")
    # GPU slots while the job runs; unset GPUs count one per worker (the job takes one when the cluster has GPUs)
    with ray_gpu_slots(ray.workers, 1.0 if ray.gpus_per_worker is None else ray.gpus_per_worker):
        submission = submit_or_attach(address, base, entry, runtime_env=job_runtime_env(),
                                      metadata={"unsamv2": "train", "config_hash": config.config_hash()})
        logger.info("%s Ray job %s: %s", "attached to" if submission.attached else "submitted",
                    submission.submission_id, entry)
        status = follow_job(address, submission.submission_id, lambda line: logger.info("[job] %s", line),
                            poll_seconds=poll_seconds)
    if status != "SUCCEEDED":
        raise RuntimeError(f"Ray job {submission.submission_id} ended {status}: "
                           f"{job_message(address, submission.submission_id)}")
    return {**_small(read_summary(config.output_uri)), "submission_id": submission.submission_id}


@task(name="publish-training-report")
def publish_training_report(training: dict[str, Any], evaluation: EvalResult, summary_uri: str,
                            run_key: str = "mine-and-train") -> str:
    """Markdown + table artifacts (training summary, key evaluation numbers, the granularity
    probe, the verdict, rendered by :func:`unsamv2.train.summary.training_report_markdown`); the
    same Markdown is written to ``summary_uri``, which is returned."""
    from unsamv2.data import storage
    from unsamv2.train.summary import report_rows, training_report_markdown

    values = evaluation.to_dict()
    create_table_artifact(report_rows(values), key=f"{run_key}-metrics", description="evaluation of the new checkpoint")
    text = training_report_markdown(training, values, title=run_key)
    create_markdown_artifact(text, key=f"{run_key}-report", description="training and evaluation")
    storage.write_text(summary_uri, text + "\n")
    return summary_uri
