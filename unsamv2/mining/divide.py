"""Divide over several views: MaskCut on the whole image and on overlapping crops (multi-scale divide).

The release divides with a detector distilled from MaskCut, which finds objects of every size and
returns overlapping candidates. MaskCut on the whole image finds at most ``rounds`` disjoint masks
at one scale; small objects are rarely among them. The multi-scale divide runs the same MaskCut
(same tau, rounds and rules) on more views of the image:

- the whole image, at ``divide_long_side`` (60 patches on the long side by default);
- an n x n grid of crops (``divide_crops`` = n >= 2), each ``1 / (n - (n - 1) * overlap)`` of the
  image side, neighbours overlapping by ``overlap`` (a quarter) of a crop side, at
  ``divide_crop_grid`` patches on the crop's long side.

The views' masks are pasted back into the image and pooled in discovery order (whole image first,
then the crops row by row). MaskCut's own IoU rule decides across views too: a crop's mask with
IoU > ``maskcut_max_iou`` to an earlier kept candidate is dropped. Each candidate remembers the
fraction of the image its view covers, so the instance-area floor can be read per view (an
instance covers more than ``instance_min_area`` of the view that found it; see
:func:`unsamv2.mining.masks.instance_part_relation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from unsamv2.errors import InputError
from unsamv2.mining.config import MinerConfig
from unsamv2.mining.features import FeatureBackbone
from unsamv2.mining.maskcut import maskcut
from unsamv2.mining.masks import mask_iou, upsample_masks

CROP_OVERLAP = 0.25  # neighbouring crops share a quarter of a crop side


@dataclass(frozen=True)
class DivideResult:
    """Divide candidates of one image.

    ``masks`` (K, H, W) bool in image pixels, in discovery order; ``view_areas`` (K,) float64, the
    fraction of the image covered by the view (whole image 1.0, or a crop) that found each mask.
    """

    masks: np.ndarray
    view_areas: np.ndarray


def crop_boxes(height: int, width: int, n: int, overlap: float = CROP_OVERLAP) -> list[tuple[int, int, int, int]]:
    """(y0, x0, y1, x1) boxes (end exclusive) of an n x n grid of overlapping crops, row by row.

    Each crop spans ``ceil(side / (n - (n - 1) * overlap))`` pixels of each side; the first crop
    touches the top-left corner, the last the bottom-right, the others are evenly spaced.
    """
    if n < 1 or not 0.0 <= overlap < 1.0:
        raise InputError(f"crop grid needs n >= 1 and overlap in [0, 1), got n={n}, overlap={overlap}.")
    frac = 1.0 / (n - (n - 1) * overlap)
    ch, cw = min(height, math.ceil(height * frac)), min(width, math.ceil(width * frac))
    ys = np.linspace(0, height - ch, n).round().astype(int)
    xs = np.linspace(0, width - cw, n).round().astype(int)
    return [(int(y), int(x), int(y) + ch, int(x) + cw) for y in ys for x in xs]


def view_masks(view: np.ndarray, backbone: FeatureBackbone, long_side: int, config: MinerConfig) -> np.ndarray:
    """MaskCut masks (K, h, w) bool of one view (h, w, 3) uint8 at ``long_side`` pixels, non-empty."""
    feats = backbone.features(view, long_side)
    if not np.isfinite(feats).all():
        raise InputError("the backbone produced NaN or infinite features; check its weights.")
    if feats.shape[0] * feats.shape[1] < 3:
        return np.zeros((0, *view.shape[:2]), dtype=bool)
    found = maskcut(
        feats, config.tau, config.rounds, max_iou=config.maskcut_max_iou, min_area=config.maskcut_min_area,
        masking=config.masking, round_rule=config.round_rule, device=config.device,
    )
    masks = upsample_masks(found.masks, view.shape[0], view.shape[1])
    return masks[masks.any(axis=(1, 2))]


def divide_image(image: np.ndarray, backbone: FeatureBackbone, config: MinerConfig) -> DivideResult:
    """Candidates of ``image`` (H, W, 3) uint8: MaskCut on the whole image, then on the crops of
    ``config.divide_crops`` (none when 1); see the module docstring for the cross-view IoU rule."""
    h, w = image.shape[:2]
    pooled = [view_masks(image, backbone, config.effective_divide_long_side, config)]
    views = [np.ones(len(pooled[0]))]
    if config.divide_crops > 1:
        crop_side = config.divide_crop_grid * config.effective_patch_size
        for y0, x0, y1, x1 in crop_boxes(h, w, config.divide_crops):
            local = view_masks(np.ascontiguousarray(image[y0:y1, x0:x1]), backbone, crop_side, config)
            full = np.zeros((len(local), h, w), dtype=bool)
            full[:, y0:y1, x0:x1] = local
            earlier = np.concatenate(pooled)
            if len(earlier) and len(full):  # one crop's own masks are disjoint: compare with earlier views
                full = full[mask_iou(full, earlier).max(axis=1) <= config.maskcut_max_iou]
            pooled.append(full)
            views.append(np.full(len(full), (y1 - y0) * (x1 - x0) / (h * w)))
    return DivideResult(np.concatenate(pooled), np.concatenate(views).astype(np.float64))
