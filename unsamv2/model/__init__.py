"""unsamv2.model — SAM-2 plus the granularity module (docs/architecture.md#model, #inference).

Public API (imported lazily: ``import unsamv2.model`` does not import torch or sam2)::

    from unsamv2.model import build_model, UnSAMv2Predictor
    model = build_model("sam2.1_hiera_s", checkpoint="unsamv2_small.pt")
    predictor = UnSAMv2Predictor(model)

- :func:`build_model`, :func:`build_sam2`, :func:`config_names`             (``build``)
- :class:`UnSAMv2Model`, :class:`ImageFeatures`, :class:`DecoderOutput`     (``network``)
- :class:`UnSAMv2Predictor`                                                (``predictor``)
- :class:`UnSAMv2MaskGenerator`                                            (``generator``)
- :class:`UnSAMv2VideoPredictor`                                           (``video``)
- adapter helpers: :func:`trainable_parameters`, :func:`adapter_parameters`,
  :func:`set_trainable`, :func:`adapter_state_dict`, :func:`save_adapter`,
  :func:`load_adapter`, :func:`read_adapter`, :func:`count_parameters`      (``adapter``)
- building blocks: :class:`GranularityEncoder`, :func:`fourier_features`,
  :class:`GranularityPromptEncoder`, :class:`GranularityMaskDecoder`, :class:`LoRALinear`
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what _EXPORTS names, for type checkers (at runtime __getattr__ loads it lazily)
    from unsamv2.model.adapter import adapter_parameters as adapter_parameters
    from unsamv2.model.adapter import adapter_state_dict as adapter_state_dict
    from unsamv2.model.adapter import count_parameters as count_parameters
    from unsamv2.model.adapter import load_adapter as load_adapter
    from unsamv2.model.adapter import read_adapter as read_adapter
    from unsamv2.model.adapter import save_adapter as save_adapter
    from unsamv2.model.adapter import set_trainable as set_trainable
    from unsamv2.model.adapter import trainable_parameters as trainable_parameters
    from unsamv2.model.build import build_model as build_model
    from unsamv2.model.build import build_sam2 as build_sam2
    from unsamv2.model.build import config_names as config_names
    from unsamv2.model.decoder import GranularityMaskDecoder as GranularityMaskDecoder
    from unsamv2.model.generator import UnSAMv2MaskGenerator as UnSAMv2MaskGenerator
    from unsamv2.model.granularity import GranularityEncoder as GranularityEncoder
    from unsamv2.model.granularity import GranularityPromptEncoder as GranularityPromptEncoder
    from unsamv2.model.granularity import fourier_features as fourier_features
    from unsamv2.model.lora import LoRALinear as LoRALinear
    from unsamv2.model.network import DecoderOutput as DecoderOutput
    from unsamv2.model.network import ImageFeatures as ImageFeatures
    from unsamv2.model.network import UnSAMv2Model as UnSAMv2Model
    from unsamv2.model.predictor import UnSAMv2Predictor as UnSAMv2Predictor
    from unsamv2.model.video import UnSAMv2VideoPredictor as UnSAMv2VideoPredictor

_EXPORTS = {
    "build_model": "build",
    "build_sam2": "build",
    "config_names": "build",
    "UnSAMv2Model": "network",
    "ImageFeatures": "network",
    "DecoderOutput": "network",
    "UnSAMv2Predictor": "predictor",
    "UnSAMv2MaskGenerator": "generator",
    "UnSAMv2VideoPredictor": "video",
    "trainable_parameters": "adapter",
    "adapter_parameters": "adapter",
    "set_trainable": "adapter",
    "adapter_state_dict": "adapter",
    "save_adapter": "adapter",
    "load_adapter": "adapter",
    "read_adapter": "adapter",
    "count_parameters": "adapter",
    "GranularityEncoder": "granularity",
    "GranularityPromptEncoder": "granularity",
    "fourier_features": "granularity",
    "GranularityMaskDecoder": "decoder",
    "LoRALinear": "lora",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'unsamv2.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f"unsamv2.model.{module}"), name)


def __dir__() -> list[str]:
    return __all__
