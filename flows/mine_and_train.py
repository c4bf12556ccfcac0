"""Flow ``mine-and-train``: images -> mask table, statistics and split (the ``mine`` flow) -> train
the granularity adapter -> evaluate the new checkpoint on the held-out procedural benchmark (and
any COCO-format datasets) -> report.

Everything lands under ``output_uri`` (a folder or ``s3://`` prefix)::

    mask_table/            the mined table (mask_table/stats: statistics and train/val split)
    train/                 checkpoints/, summary.json, loss.png
    report/                report.html, report.md, report.json, plots/, probe.json
    summary.md             what the flow's Markdown artifact says

The settings come as one dict per use case, each with the job's own field names and defaults
(``{}``: all defaults): ``mining`` (the ``mine`` flow's parameters), ``training`` (TrainConfig),
``evaluation`` (EvalJob), ``ray_train`` (RayTrainOptions). Run from a deployment, a dict given with
the run is laid over the deployment's (``-p training='{"max_steps": 50}'`` changes one value and
keeps the deployment's others). :func:`unsamv2.jobs.mine_and_train.plan_mine_and_train` validates
them all before any work.

Training runs in the flow's process (``train_backend="local"``), on Ray Train workers of the
mining's Ray (``"ray"``), or as a Ray Job on an existing cluster whose job server is
``job_address`` (``"ray-job"``: a stable submission id, so a Prefect retry attaches to the job it
started). The evaluation runs in the flow's process, or as a Ray task holding ``evaluation.gpus``
GPUs when that is > 0 (the flow's process, e.g. a Kubernetes pod, needs no GPU). A rerun with the
same ``output_uri`` skips finished shards and resumes training.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.mine import mine
from flows.parameters import over_deployment
from tasks.evaluation import evaluate_checkpoint
from tasks.training import publish_training_report, submit_training_job, train_adapter
from unsamv2.jobs.mine_and_train import PipelineTrainBackend, plan_mine_and_train


@flow(name="mine-and-train",
      description="Mine (mask, g) pairs, fine-tune the UnSAMv2 granularity adapter, evaluate it, report.")
def mine_and_train(
    input_uri: str,
    output_uri: str,
    mining: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
    train_backend: PipelineTrainBackend = "local",
    ray_train: dict[str, Any] | None = None,
    job_address: str | None = None,
) -> dict[str, Any]:
    """mine -> stats/split -> train -> evaluate -> report. Returns URIs and the key numbers."""
    logger = get_run_logger()
    nested = over_deployment({"mining": mining, "training": training, "evaluation": evaluation,
                              "ray_train": ray_train})
    plan = plan_mine_and_train(input_uri, output_uri, train_backend=train_backend, job_address=job_address,
                               **nested)  # every job validated here, before any work
    mined = mine(input_uri=input_uri, output_uri=plan.table_uri, statistics=True, **plan.mining)
    logger.info("mask table %s: %d masks; split %s", plan.table_uri, mined["stats"]["masks"], mined["stats"]["split"])
    if plan.train_backend == "ray-job":
        assert plan.job_address is not None  # the plan refuses ray-job without it
        training_result = submit_training_job(plan.train, plan.ray_train, plan.job_address)
    else:
        training_result = train_adapter(plan.train, plan.train_backend, plan.ray_train, run_key="mine-and-train-train")
    result = evaluate_checkpoint(training_result["checkpoint_uri"], plan.report_uri, plan.evaluation)
    summary = publish_training_report(training_result, result, plan.summary_uri)
    logger.info("checkpoint %s; report %s", training_result["checkpoint_uri"], result.files["html"])
    evaluated = result.to_dict()
    return {"table_uri": plan.table_uri, "training": training_result,
            "checkpoint_uri": training_result["checkpoint_uri"], "report": evaluated["files"],
            "metrics": evaluated["metrics"], "probe": evaluated["probe"], "regressed": evaluated["regressed"],
            "summary_uri": summary}

