"""The paper's evaluation protocol (docs/architecture.md#evaluation), reports, history and regression checks.

Modules:

- ``interactive``  click simulation (``simulate_clicks``) and mask IoU
- ``metrics``      NoC, NoF, mIoU over IoU curves (with the explicit padding rule)
- ``protocols``    what a predictor / baseline / mask generator must implement
- ``policies``     oracle granularity, fixed g, SAM-2 single and best-of-3
- ``whole_image``  class-agnostic AR via COCOeval, pooling of masks over g
- ``datasets``     COCO-format loader and the procedural scenes benchmark
- ``runner``       ``evaluate(predictor, datasets, config) -> EvalReport``
- ``report`` / ``plots`` / ``html`` / ``output``  typed report, PNG plots, HTML page, files
- ``history``      run history Parquet, pinned baseline, ``RegressionVerdict``
- ``checkpoint``   ``EvalJob`` and ``run_eval(job, folder, out)`` / ``evaluate_checkpoint(folder, out)``: the one
                   entry point the CLI and the flows call
- ``result``       ``EvalResult``: files, metrics, probe, verdict and whether the run ``regressed``

The names below are importable from ``unsamv2.eval`` directly; their modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what _EXPORTS names, for type checkers (at runtime __getattr__ loads it lazily)
    from unsamv2.eval.checkpoint import benchmark_datasets as benchmark_datasets
    from unsamv2.eval.checkpoint import evaluate_checkpoint as evaluate_checkpoint
    from unsamv2.eval.datasets import CocoDataset as CocoDataset
    from unsamv2.eval.datasets import DatasetSpec as DatasetSpec
    from unsamv2.eval.datasets import SceneDataset as SceneDataset
    from unsamv2.eval.datasets import parse_scenes as parse_scenes
    from unsamv2.eval.history import RegressionVerdict as RegressionVerdict
    from unsamv2.eval.history import append_history as append_history
    from unsamv2.eval.history import check_regressions as check_regressions
    from unsamv2.eval.history import pin_baseline as pin_baseline
    from unsamv2.eval.interactive import mask_iou as mask_iou
    from unsamv2.eval.interactive import simulate_clicks as simulate_clicks
    from unsamv2.eval.interactive import simulate_clicks_trace as simulate_clicks_trace
    from unsamv2.eval.metrics import miou_at as miou_at
    from unsamv2.eval.metrics import miou_curve as miou_curve
    from unsamv2.eval.metrics import noc as noc
    from unsamv2.eval.metrics import nof as nof
    from unsamv2.eval.output import write_report as write_report
    from unsamv2.eval.policies import FixedGranularity as FixedGranularity
    from unsamv2.eval.policies import OracleGranularity as OracleGranularity
    from unsamv2.eval.policies import Sam2BestOf3 as Sam2BestOf3
    from unsamv2.eval.policies import Sam2Single as Sam2Single
    from unsamv2.eval.policies import parse_policy as parse_policy
    from unsamv2.eval.protocols import GranularityPredictor as GranularityPredictor
    from unsamv2.eval.protocols import MaskGenerator as MaskGenerator
    from unsamv2.eval.protocols import MultimaskPredictor as MultimaskPredictor
    from unsamv2.eval.report import EvalReport as EvalReport
    from unsamv2.eval.result import EvalResult as EvalResult
    from unsamv2.eval.result import record_report as record_report
    from unsamv2.eval.runner import EvalConfig as EvalConfig
    from unsamv2.eval.runner import evaluate as evaluate
    from unsamv2.eval.whole_image import average_recall as average_recall
    from unsamv2.eval.whole_image import pool_detections as pool_detections

_EXPORTS = {
    "simulate_clicks": "interactive", "simulate_clicks_trace": "interactive", "mask_iou": "interactive",
    "noc": "metrics", "nof": "metrics", "miou_at": "metrics", "miou_curve": "metrics",
    "GranularityPredictor": "protocols", "MultimaskPredictor": "protocols", "MaskGenerator": "protocols",
    "OracleGranularity": "policies", "FixedGranularity": "policies", "Sam2Single": "policies",
    "Sam2BestOf3": "policies", "parse_policy": "policies",
    "average_recall": "whole_image", "pool_detections": "whole_image",
    "CocoDataset": "datasets", "SceneDataset": "datasets", "DatasetSpec": "datasets",
    "EvalConfig": "runner", "evaluate": "runner",
    "EvalReport": "report", "write_report": "output",
    "append_history": "history", "check_regressions": "history", "pin_baseline": "history",
    "RegressionVerdict": "history", "EvalResult": "result", "record_report": "result",
    "evaluate_checkpoint": "checkpoint", "benchmark_datasets": "checkpoint", "parse_scenes": "datasets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"unsamv2.eval.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'unsamv2.eval' has no attribute {name!r}")
