"""Conquer: part discovery inside one instance (docs/architecture.md#mining-conquer).

Crop the instance box, extract patch features at ``conquer_long_side`` (sides rounded up to the
patch size), merge 4-connected regions bottom-up (:func:`merge_regions`), upsample every level's
regions to the crop (bilinear, threshold 0.5), and keep the regions with more than ``coverage`` of
their pixels inside the instance. The kept regions of a level are disjoint, so each level becomes
one label layer (see :mod:`unsamv2.mining.masks`); NMS and pasting back happen in the miner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unsamv2.errors import InputError
from unsamv2.mining.features import FeatureBackbone
from unsamv2.mining.masks import upsample_labels
from unsamv2.mining.merging import DEFAULT_THRESHOLDS, merge_regions, merge_regions_reference

__all__ = [
    "ConquerLevels",
    "DEFAULT_THRESHOLDS",
    "conquer_instance",
    "instance_box",
    "merge_regions",
    "merge_regions_reference",
]


@dataclass
class ConquerLevels:
    """Kept regions of one instance, per merge level, as label images in the crop.

    ``box`` = (y0, x0, y1, x1) crop in image pixels (end exclusive); ``labels[i]`` (y1-y0, x1-x0)
    int32 with 0..K_i-1 for the kept regions of level i and -1 elsewhere.
    """

    box: tuple[int, int, int, int]
    labels: list[np.ndarray]


def instance_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) tight box of a (H, W) bool mask, end exclusive."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        raise InputError("cannot conquer an empty instance mask.")
    return int(ys[0]), int(xs[0]), int(ys[-1]) + 1, int(xs[-1]) + 1


def _level_labels(level: np.ndarray) -> np.ndarray:
    """(K, h, w) disjoint bool masks -> (h, w) int32 labels, -1 where no mask."""
    grid = np.full(level.shape[1:], -1, dtype=np.int32)
    for k, m in enumerate(level):
        grid[m] = k
    return grid


def _keep_covered(labels: np.ndarray, inside: np.ndarray, coverage: float) -> np.ndarray:
    """Relabel to 0..K'-1 the labels with > coverage of their pixels inside; others -> -1."""
    k = int(labels.max()) + 1
    if k <= 0:
        return labels
    valid = labels >= 0
    total = np.bincount(labels[valid], minlength=k)
    within = np.bincount(labels[valid & inside], minlength=k)
    keep = (total > 0) & (within > coverage * total)
    remap = np.full(k + 1, -1, dtype=np.int32)
    remap[np.flatnonzero(keep)] = np.arange(int(keep.sum()), dtype=np.int32)
    return remap[labels]  # label -1 indexes the last entry, which is -1


def conquer_instance(
    image: np.ndarray,
    instance: np.ndarray,
    backbone: FeatureBackbone,
    *,
    long_side: int = 768,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    min_size: int = 4,
    coverage: float = 0.9,
) -> ConquerLevels:
    """Regions of ``instance`` (H, W) bool in ``image`` (H, W, 3) uint8, one label layer per level."""
    y0, x0, y1, x1 = instance_box(instance)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    inside = instance[y0:y1, x0:x1]
    if min(crop.shape[:2]) < 2:
        return ConquerLevels((y0, x0, y1, x1), [])
    feats = backbone.features(crop, long_side)
    if not np.isfinite(feats).all():
        raise InputError("the backbone produced NaN or infinite features; check its weights.")
    layers = []
    for level in merge_regions(feats, thresholds, min_size):
        labels = upsample_labels(_level_labels(level), y1 - y0, x1 - x0)
        layers.append(_keep_covered(labels, inside, coverage))
    return ConquerLevels((y0, x0, y1, x1), layers)
