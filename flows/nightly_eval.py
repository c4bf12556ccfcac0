"""Flow ``nightly-eval``: evaluate a checkpoint (given, or the newest in a registry) with the paper's
protocol, write JSON / Markdown / HTML reports, append to the history and fail on a regression.

Deployed with a cron schedule and a concurrency limit of 1 (see prefect.yaml).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Failed

from tasks.evaluation import evaluate_checkpoint, publish_eval_report, resolve_checkpoint
from unsamv2.eval.checkpoint import EvalJob

#: Parameters that say what to evaluate and where the results go, not how (not EvalJob fields).
NOT_JOB = ("report_store", "checkpoint_uri", "registry_uri", "fail_on_regression")


@flow(name="nightly-eval", description="Evaluate the newest checkpoint with the paper's protocol; fail on regression.")
def nightly_eval(
    report_store: str,
    checkpoint_uri: str | None = None,
    registry_uri: str | None = None,
    scenes: str | None = EvalJob.scenes,
    datasets: list[str] = list(EvalJob.datasets),  # noqa: B006 - never mutated: the job's default
    policies: list[str] = list(EvalJob.policies),  # noqa: B006
    whole_image: bool = EvalJob.whole_image,
    points_per_side: int = EvalJob.points_per_side,
    m2m: bool = EvalJob.m2m,
    max_clicks: int = EvalJob.max_clicks,
    max_objects: int | None = EvalJob.max_objects,
    probe: bool = EvalJob.probe,
    device: str = EvalJob.device,
    ray_address: str | None = EvalJob.ray_address,
    gpus: float = EvalJob.gpus,
    baseline_checkpoint: str | None = EvalJob.baseline_checkpoint,
    fail_on_regression: bool = True,
) -> Any:
    """Checkpoint → evaluation (locally or as a Ray task) → history + verdict → artifacts.

    Reports go to ``<report_store>/runs/<UTC time>-<flow run>/``; the history and pinned baseline
    live in ``report_store`` (the job's ``history_uri``); the other parameters are the evaluation
    job's fields (:class:`~unsamv2.eval.checkpoint.EvalJob`), validated once before any work.
    ``policies`` defaults to ``["oracle", "g=1"]``; ``sam2-single`` /
    ``sam2-best3`` add the SAM-2 baselines (plain SAM-2 from ``baseline_checkpoint``, default the
    base checkpoint the adapter was trained on). ``whole_image`` adds AR with the official
    protocol (m2m pass, ``points_per_side`` 64 by default; the grid is in the protocol hash).
    Returns the result (:meth:`~unsamv2.eval.result.EvalResult.to_dict`: ``run_id``, ``files``,
    ``metrics``, ``probe``, ``verdict``, ``regressed``), or a Failed state holding it when a
    regression is found.
    """
    params = dict(locals())  # exactly this flow's parameters
    job = EvalJob(**{k: v for k, v in params.items() if k not in NOT_JOB}, history_uri=report_store)
    logger = get_run_logger()
    checkpoint = resolve_checkpoint(checkpoint_uri, registry_uri)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = f"{report_store.rstrip('/')}/runs/{stamp}-{str(flow_run.id or 'local')[:8]}"
    result = evaluate_checkpoint(checkpoint, out, job)
    publish_eval_report(result, checkpoint)
    logger.info("evaluation run %s written to %s", result.run_id, result.files["html"])
    if fail_on_regression and result.regressed:
        return Failed(message=f"regression against {checkpoint}: {result.summary}", data=result.to_dict())
    return result.to_dict()
