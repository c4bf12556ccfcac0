"""Prefect tasks of the ``nightly-eval`` flow: pick the checkpoint, evaluate it, publish the report."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from unsamv2.eval.checkpoint import EvalJob
from unsamv2.eval.result import EvalResult


@task(name="resolve-checkpoint", retries=2, retry_delay_seconds=5)
def resolve_checkpoint(checkpoint_uri: str | None, registry_uri: str | None) -> str:
    """The given checkpoint folder, or the newest complete one in the registry (completed last)."""
    from unsamv2.eval.registry import resolve_checkpoint as resolve

    uri = resolve(checkpoint_uri, registry_uri)
    get_run_logger().info("evaluating checkpoint %s", uri)
    return uri


@task(name="evaluate-checkpoint", retries=1, retry_delay_seconds=30)
def evaluate_checkpoint(checkpoint_uri: str, out_uri: str, job: EvalJob) -> EvalResult:
    """Run the evaluation job (:func:`unsamv2.eval.checkpoint.run_eval`; as a Ray task holding
    ``job.gpus`` GPUs when ``job.ray_address`` is set: "auto", a cluster address, or "local" for a
    Ray started here); returns its typed result (report URIs, metrics, probe, verdict)."""
    from unsamv2.eval.checkpoint import run_eval

    if job.ray_address:
        from tasks.limits import ray_gpu_slots

        get_run_logger().info("evaluating on the Ray cluster %s with %s GPU(s)", job.ray_address, job.gpus)
        with ray_gpu_slots(1, job.gpus):  # GPU jobs queue in Prefect
            return run_eval(job, checkpoint_uri, out_uri)
    artifact = create_progress_artifact(0.0, key="evaluation-progress", description=f"images of {checkpoint_uri}")

    def progress(done: int, total: int) -> None:
        update_progress_artifact(artifact, 100.0 * done / max(total, 1))

    return run_eval(job, checkpoint_uri, out_uri, on_progress=progress)


@task(name="publish-eval-report")
def publish_eval_report(result: EvalResult, checkpoint_uri: str) -> None:
    """Prefect artifacts with stable keys (metrics table, Markdown report, link to the HTML page)."""
    from unsamv2.data import storage

    rows = [{"metric": k, "value": round(v, 4) if isinstance(v, float) else v}
            for k, v in sorted(result.metrics.items())]
    create_table_artifact(rows, key="nightly-eval-metrics", description=f"metrics of {checkpoint_uri}")
    markdown = storage.read_text(result.files["markdown"])
    create_markdown_artifact(markdown, key="nightly-eval-report", description=f"evaluation of {checkpoint_uri}")
    create_link_artifact(result.files["html"], link_text="HTML report with plots", key="nightly-eval-html")
    get_run_logger().info("report: %s; %s", result.files["html"], result.summary)
