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
- ``checkpoint``   ``evaluate_checkpoint(folder, out)``: the one entry point the CLI and the flows call

The names below are importable from ``unsamv2.eval`` directly; their modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

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
    "RegressionVerdict": "history",
    "evaluate_checkpoint": "checkpoint", "benchmark_datasets": "checkpoint", "parse_scenes": "datasets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"unsamv2.eval.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'unsamv2.eval' has no attribute {name!r}")
