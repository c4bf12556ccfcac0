"""Mining: granularity-aware divide and conquer (docs/architecture.md#mining).

Public API (imported lazily, so ``import unsamv2.mining`` stays cheap)::

    from unsamv2.mining import Miner, MinerConfig, MinedMask, to_mask_records
    from unsamv2.mining.conquer import merge_regions
    from unsamv2.mining.granularity import granularity_scores
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what _EXPORTS names, for type checkers (at runtime __getattr__ loads it lazily)
    from unsamv2.mining.config import MinedMask as MinedMask
    from unsamv2.mining.config import MinerConfig as MinerConfig
    from unsamv2.mining.dino import load_dino_backbone as load_dino_backbone
    from unsamv2.mining.features import PatchDescriptor as PatchDescriptor
    from unsamv2.mining.granularity import granularity_scores as granularity_scores
    from unsamv2.mining.maskcut import maskcut as maskcut
    from unsamv2.mining.merging import merge_regions as merge_regions
    from unsamv2.mining.miner import Miner as Miner
    from unsamv2.mining.miner import build_backbone as build_backbone
    from unsamv2.mining.miner import to_mask_records as to_mask_records

_EXPORTS = {
    "Miner": "unsamv2.mining.miner",
    "build_backbone": "unsamv2.mining.miner",
    "to_mask_records": "unsamv2.mining.miner",
    "MinerConfig": "unsamv2.mining.config",
    "MinedMask": "unsamv2.mining.config",
    "merge_regions": "unsamv2.mining.merging",
    "maskcut": "unsamv2.mining.maskcut",
    "granularity_scores": "unsamv2.mining.granularity",
    "PatchDescriptor": "unsamv2.mining.features",
    "load_dino_backbone": "unsamv2.mining.dino",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'unsamv2.mining' has no attribute {name!r}")
