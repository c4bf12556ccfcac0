"""Flow ``nightly-eval``: evaluate a checkpoint (given, or the newest in a registry) with the paper's
protocol, write JSON / Markdown / HTML reports, append to the history and fail on a regression.

Deployed with a cron schedule and a concurrency limit of 1 (see prefect.yaml).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Failed
from pydantic import Field

from tasks.evaluation import evaluate_checkpoint, publish_eval_report, resolve_checkpoint
from unsamv2.eval.checkpoint import DEFAULT_SCENES, EvalJob


@flow(name="nightly-eval", description="Evaluate the newest checkpoint with the paper's protocol; fail on regression.")
def nightly_eval(
    report_store: str,
    checkpoint_uri: str | None = None,
    registry_uri: str | None = None,
    scenes: str | None = DEFAULT_SCENES,
    datasets: list[str] | None = None,
    policies: list[str] | None = None,
    whole_image: bool = False,
    points_per_side: Annotated[int, Field(ge=1)] = 64,
    m2m: bool = True,
    max_clicks: Annotated[int, Field(ge=1, le=100)] = 20,
    device: Literal["cpu", "cuda"] = "cpu",
    ray_address: str | None = None,
    gpus: Annotated[float, Field(ge=0)] = 0.0,
    baseline_checkpoint: str | None = None,
    fail_on_regression: bool = True,
) -> Any:
    """Checkpoint → evaluation (locally or as a Ray task) → history + verdict → artifacts.

    Reports go to ``<report_store>/runs/<UTC time>-<flow run>/``; the history and pinned baseline
    live in ``report_store``. ``policies`` defaults to ``["oracle", "g=1"]``; ``sam2-single`` /
    ``sam2-best3`` add the SAM-2 baselines (plain SAM-2 from ``baseline_checkpoint``, default the
    base checkpoint the adapter was trained on). ``whole_image`` adds AR with the official
    protocol (m2m pass, ``points_per_side`` 64 by default; the grid is in the protocol hash).
    Returns the result dict, or a Failed state when a regression is found.
    """
    logger = get_run_logger()
    checkpoint = resolve_checkpoint(checkpoint_uri, registry_uri)
    job = EvalJob(scenes=scenes, datasets=tuple(datasets or ()), policies=tuple(policies or ()),
                  whole_image=whole_image, points_per_side=points_per_side, m2m=m2m, max_clicks=max_clicks,
                  device=device, baseline_checkpoint=baseline_checkpoint, ray_address=ray_address, gpus=gpus,
                  history_uri=report_store)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = f"{report_store.rstrip('/')}/runs/{stamp}-{str(flow_run.id or 'local')[:8]}"
    result = evaluate_checkpoint(checkpoint, out, job)
    verdict = publish_eval_report(result, checkpoint)
    logger.info("evaluation run %s written to %s", result["run_id"], result["files"]["html"])
    if fail_on_regression and verdict and verdict["regressed"]:
        return Failed(message=f"regression against {checkpoint}: {verdict['summary']}", data=result)
    return result
