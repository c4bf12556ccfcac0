"""From per-object runs to the report's per-dataset metrics (pure functions)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from unsamv2.eval.datasets import EvalDataset, EvalSample
from unsamv2.eval.metrics import miou_curve, noc, noc_key, nof
from unsamv2.eval.policies import ObjectRun
from unsamv2.eval.report import DatasetReport, PolicyMetrics, WholeImageMetrics
from unsamv2.eval.whole_image import ar_by_granularity, average_recall


def g_key(g: float) -> str:
    """A granularity as a dict key: 0.5 -> "0.5", 1.0 -> "1.0"."""
    return f"{round(float(g), 4)}"


def object_row(dataset: str, sample: EvalSample, k: int, run: ObjectRun, target: float) -> dict[str, Any]:
    """One row of the per-object table (Parquet next to the report)."""
    reached = run.ious[-1] >= target
    return {
        "dataset": dataset, "image_id": sample.image_id, "object_id": sample.ids[k], "policy": run.policy,
        "granularity": run.granularity, "gt_granularity": sample.granularity[k] if sample.granularity else None,
        "level": sample.level[k] if sample.level else None, "clicks": len(run.ious), "reached": bool(reached),
        "iou1": run.ious[0], "ious": [float(v) for v in run.ious], "n_predictions": run.n_predictions,
        "area": int(sample.masks[k].sum()),
    }


def policy_metrics(name: str, runs: list[ObjectRun], thresholds: list[float], target: float,
                   max_clicks: int, seconds: float) -> PolicyMetrics:
    """Aggregate the runs of one policy on one dataset (``runs`` must not be empty)."""
    curves = [r.ious for r in runs]
    chosen, by_g = {}, {}
    sweeps = [r.sweep for r in runs if r.sweep]
    if sweeps:
        chosen = dict(sorted(Counter(g_key(r.granularity) for r in runs if r.granularity is not None).items(),
                             key=lambda kv: float(kv[0])))
        gs = [s.granularity for s in sweeps[0]]
        by_g = {g_key(g): float(np.mean([s[i].ious[0] for s in sweeps])) for i, g in enumerate(gs)}
    return PolicyMetrics(
        policy=name, n_objects=len(runs),
        noc={noc_key(t): noc(curves, t, max_clicks, run_target=target) for t in thresholds},
        nof={noc_key(t): nof(curves, t, max_clicks, run_target=target) for t in thresholds},
        iou1=float(np.mean([c[0] for c in curves])), miou=miou_curve(curves, max_clicks),
        seconds_per_object=seconds / len(runs),
        predictions_per_object=float(np.mean([r.n_predictions for r in runs])),
        chosen_g=chosen, iou1_by_g=by_g)


def whole_image_metrics(gt: dict[str, Any], dets: list[dict[str, Any]], granularities: list[float],
                        max_dets: list[int], seconds: float) -> WholeImageMetrics | None:
    """AR of the pooled detections and AR@max(max_dets) of each single g; None without objects."""
    if not any(not a["iscrowd"] for a in gt["annotations"]):
        return None
    top = max(max_dets)
    ar = average_recall(gt, dets, max_dets)
    by_g = ar_by_granularity(gt, dets, granularities, max_det=top)
    return WholeImageMetrics(ar={str(k): v for k, v in ar.items()}, ar_by_g={g_key(g): v for g, v in by_g.items()},
                             n_images=len(gt["images"]), n_ground_truth=sum(not a["iscrowd"] for a in gt["annotations"]),
                             n_detections=len(dets), seconds_per_image=seconds / max(len(gt["images"]), 1))


def dataset_report(dataset: EvalDataset, config: Any, target: float, n_images: int,
                   runs: dict[str, list[ObjectRun]], seconds: dict[str, float],
                   whole: tuple[dict[str, Any], list[dict[str, Any]], float] | None) -> DatasetReport:
    """The :class:`DatasetReport` of one dataset from its collected runs."""
    thresholds = [float(t) for t in config.thresholds if t <= target + 1e-9]
    interactive = [policy_metrics(name, rs, thresholds, target, config.max_clicks, seconds[name])
                   for name, rs in runs.items() if rs]
    n_objects = max((len(rs) for rs in runs.values()), default=0)
    wi = None
    if whole is not None:
        wi = whole_image_metrics(whole[0], whole[1], list(config.granularities), list(config.max_dets), whole[2])
    return DatasetReport(name=dataset.name, kind=dataset.kind, version=dataset.version, n_images=n_images,
                         n_objects=n_objects, target_iou=float(target), thresholds=thresholds,
                         interactive=interactive, whole_image=wi)
