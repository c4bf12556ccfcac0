"""unsamv2.train — fine-tune the granularity adapter on mined (mask, g) pairs (docs/architecture.md#training).

Public API (imported lazily: ``import unsamv2.train`` does not import torch)::

    from unsamv2.train import TrainConfig, train
    result = train(TrainConfig(table_uri="runs/demo/mask_table", output_uri="runs/train"), resume=True)
    result.checkpoint_uri, result.adapter_uri

- :class:`TrainConfig`, :class:`AugmentConfig`                   (``config``)
- :func:`train`, :class:`TrainResult`, :class:`StepLog`            (``recipe``)
- :class:`TrainingDivergedError` (a non-finite loss stopped a run)   (``guard``)
- :func:`sample_clicks`                                            (``clicks``)
- :func:`interactive_loss`, :class:`LossWeights` and the terms     (``losses``)
- :func:`latest_checkpoint`, :func:`load_trained_model`            (``checkpoint``)
- :func:`granularity_probe`                                        (``probe``)
- :func:`human_mask_table`                                         (``supervision``)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "AugmentConfig": "config",
    "train": "recipe",
    "TrainResult": "recipe",
    "StepLog": "recipe",
    "TrainingDivergedError": "guard",
    "sample_clicks": "clicks",
    "interactive_loss": "losses",
    "LossWeights": "losses",
    "sigmoid_focal_loss": "losses",
    "dice_loss": "losses",
    "iou_l1_loss": "losses",
    "object_score_loss": "losses",
    "latest_checkpoint": "checkpoint",
    "load_trained_model": "checkpoint",
    "granularity_probe": "probe",
    "human_mask_table": "supervision",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'unsamv2.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"unsamv2.train.{module}"), name)


def __dir__() -> list[str]:
    return __all__
