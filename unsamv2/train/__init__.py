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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what _EXPORTS names, for type checkers (at runtime __getattr__ loads it lazily)
    from unsamv2.train.checkpoint import latest_checkpoint as latest_checkpoint
    from unsamv2.train.checkpoint import load_trained_model as load_trained_model
    from unsamv2.train.clicks import sample_clicks as sample_clicks
    from unsamv2.train.config import AugmentConfig as AugmentConfig
    from unsamv2.train.config import TrainConfig as TrainConfig
    from unsamv2.train.guard import TrainingDivergedError as TrainingDivergedError
    from unsamv2.train.losses import LossWeights as LossWeights
    from unsamv2.train.losses import dice_loss as dice_loss
    from unsamv2.train.losses import interactive_loss as interactive_loss
    from unsamv2.train.losses import iou_l1_loss as iou_l1_loss
    from unsamv2.train.losses import object_score_loss as object_score_loss
    from unsamv2.train.losses import sigmoid_focal_loss as sigmoid_focal_loss
    from unsamv2.train.probe import granularity_probe as granularity_probe
    from unsamv2.train.recipe import StepLog as StepLog
    from unsamv2.train.recipe import TrainResult as TrainResult
    from unsamv2.train.recipe import train as train
    from unsamv2.train.supervision import human_mask_table as human_mask_table

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
