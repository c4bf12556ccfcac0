"""Mask utilities of the miner: upsampling, exact IoU, NMS, protected NMS, instance-part relation.

Coordinates: arrays are indexed (y, x); boxes are (x, y, w, h) pixels (COCO).

Masks that come from one patch-grid partition are disjoint, so the miner keeps them as *label
layers*: an (h, w) int32 image with the index of the mask covering each pixel, -1 for none.
:class:`LabelLayers` computes the exact pixel intersections of every pair of masks of all its
layers with one joint histogram per pair of layers, without materialising the masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from unsamv2.errors import InputError


def _axis_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps (half-pixel centres, edge-clamped): low index, high index, high weight."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def upsample_labels(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Upsample a label grid (gh, gw) int (-1 = none) to (height, width) int32.

    A pixel gets the label whose bilinear weight exceeds 0.5, i.e. exactly what bilinear
    upsampling of each label's indicator mask followed by thresholding at 0.5 gives (half-pixel
    centres, as ``torch.nn.functional.interpolate(align_corners=False)``); -1 where no label has
    the majority (only possible where three or four labels meet).
    """
    grid = np.asarray(grid)
    y0, y1, wy = _axis_taps(grid.shape[0], height)
    x0, x1, wx = _axis_taps(grid.shape[1], width)
    labels = [grid[np.ix_(ys, xs)] for ys in (y0, y1) for xs in (x0, x1)]
    wy, wx = wy[:, None], wx[None, :]
    weights = [(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx]
    out = np.full((height, width), -1, dtype=np.int32)
    for cand in labels:
        score = np.zeros((height, width), dtype=np.float32)
        for lab, w in zip(labels, weights, strict=True):
            score += np.where(lab == cand, w, 0.0).astype(np.float32)
        win = (score > 0.5) & (cand >= 0)
        out[win] = cand[win]
    return out


def upsample_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear-upsample and threshold at 0.5 each grid mask (K, gh, gw) bool -> (K, H, W) bool."""
    masks = np.asarray(masks, dtype=bool)
    out = np.zeros((masks.shape[0], height, width), dtype=bool)
    for i, m in enumerate(masks):
        out[i] = upsample_labels(np.where(m, 0, -1), height, width) == 0
    return out


def bbox_of(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, w, h) pixel box of a (H, W) bool mask; (0, 0, 0, 0) when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1))


def _stack(masks: np.ndarray | Sequence[np.ndarray], name: str) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.ndim != 3:
        raise InputError(f"{name} must be an (N, H, W) array of masks, got shape {arr.shape}.")
    return arr.astype(bool, copy=False)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel IoU (Na, Nb) float64 between masks a (Na, H, W) and b (Nb, H, W); 0 when both empty."""
    a, b = _stack(a, "a"), _stack(b, "b")
    if a.shape[1:] != b.shape[1:]:
        raise InputError(f"mask sizes differ: {a.shape[1:]} vs {b.shape[1:]}.")
    fa = a.reshape(a.shape[0], -1).astype(np.float32)
    fb = b.reshape(b.shape[0], -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float64)


def area_order(areas: np.ndarray) -> np.ndarray:
    """Indices by decreasing area, ties by index (stable)."""
    return np.argsort(-np.asarray(areas), kind="stable")


def nms_from_iou(iou: np.ndarray, order: np.ndarray, threshold: float) -> list[int]:
    """Greedy NMS: walk ``order``; keep a mask unless its IoU with a kept one is > threshold.

    Exact (every pair is compared), unlike the reference release, which compares each mask only
    with the next four in area order. Returns kept indices in ``order``.
    """
    kept: list[int] = []
    for i in order.tolist():
        if all(iou[i, j] <= threshold for j in kept):
            kept.append(i)
    return kept


def nms(masks: np.ndarray, threshold: float = 0.8) -> list[int]:
    """Indices of the masks (N, H, W) kept by exact greedy NMS in decreasing-area order."""
    masks = _stack(masks, "masks")
    areas = masks.reshape(masks.shape[0], -1).sum(1)
    return nms_from_iou(mask_iou(masks, masks), area_order(areas), threshold)


def protected_nms(protected: np.ndarray, masks: np.ndarray, threshold: float = 0.8) -> list[int]:
    """Indices of ``masks`` (N, H, W) kept next to the always-kept ``protected`` (P, H, W).

    A mask whose IoU with any protected mask is > threshold is dropped; the rest go through
    :func:`nms` (decreasing area). Returns kept indices in decreasing-area order.
    """
    protected, masks = _stack(protected, "protected"), _stack(masks, "masks")
    if masks.shape[0] == 0:
        return []
    to_protected = mask_iou(masks, protected) if protected.shape[0] else np.zeros((len(masks), 0))
    areas = masks.reshape(masks.shape[0], -1).sum(1)
    order = [i for i in area_order(areas).tolist() if not (to_protected[i] > threshold).any()]
    return nms_from_iou(mask_iou(masks, masks), np.asarray(order, dtype=np.int64), threshold)


def contained(a: np.ndarray, b: np.ndarray, threshold: float = 0.8) -> bool:
    """contained(a, b) <=> |a & b| / |a| > threshold (False for an empty a)."""
    area = int(np.count_nonzero(a))
    return area > 0 and bool(np.count_nonzero(a & b) / area > threshold)


def instance_part_relation(
    masks: np.ndarray, min_instance_area: float = 0.05, containment: float = 0.8,
    view_areas: np.ndarray | None = None,
) -> dict[int, list[int]]:
    """Instances and their parts among candidate masks (N, H, W) (docs/architecture.md#mining-relation).

    An instance has area > ``min_instance_area`` of its view and is contained in no other
    candidate; a part of instance I is any other candidate contained in I. ``view_areas`` (N,)
    gives the fraction of the image covered by the view (image or crop) that found each candidate;
    None: every candidate's view is the whole image. Returns {instance index: [part indices]} in
    index order.
    """
    masks = _stack(masks, "masks")
    views = np.ones(masks.shape[0]) if view_areas is None else np.asarray(view_areas, dtype=np.float64)
    if views.shape != (masks.shape[0],):
        raise InputError(f"view_areas must have one entry per mask ({masks.shape[0]}), got shape {views.shape}.")
    n = masks.shape[0]
    if n == 0:
        return {}
    flat = masks.reshape(n, -1).astype(np.float32)
    areas = flat.sum(1)
    inter = flat @ flat.T
    frac = np.where(areas[:, None] > 0, inter / np.maximum(areas[:, None], 1), 0.0)  # |a&b|/|a|
    inside = frac > containment
    np.fill_diagonal(inside, False)
    pixels = masks.shape[1] * masks.shape[2]
    instances = [i for i in range(n) if areas[i] > min_instance_area * views[i] * pixels and not inside[i].any()]
    return {i: [j for j in range(n) if j != i and inside[j, i]] for i in instances}


@dataclass
class LabelLayers:
    """Masks stored as label layers in one frame; see the module docstring.

    ``layers``: list of (h, w) int32 label images (-1 = none); ``index``: mask i -> (layer,
    label). Labels of a layer must be 0..K-1 for the K masks registered on it.
    """

    height: int
    width: int
    layers: list[np.ndarray] = field(default_factory=list)
    index: list[tuple[int, int]] = field(default_factory=list)

    def add_layer(self, labels: np.ndarray) -> list[int]:
        """Register every label 0..max of ``labels`` (h, w) as a mask; returns their mask ids."""
        if labels.shape != (self.height, self.width):
            raise InputError(f"layer shape {labels.shape} != frame {(self.height, self.width)}.")
        k = int(labels.max()) + 1 if labels.size else 0
        layer = len(self.layers)
        self.layers.append(labels.astype(np.int32, copy=False))
        first = len(self.index)
        self.index.extend((layer, lab) for lab in range(k))
        return list(range(first, first + k))

    def add_mask(self, mask: np.ndarray) -> int:
        """Register one (h, w) bool mask as its own layer; returns its mask id."""
        return self.add_layer(np.where(mask, 0, -1).astype(np.int32))[0]

    def mask(self, i: int) -> np.ndarray:
        layer, lab = self.index[i]
        return self.layers[layer] == lab

    def _counts(self, layer: int) -> np.ndarray:
        lab = self.layers[layer]
        k = sum(1 for lay, _ in self.index if lay == layer)
        return np.bincount(lab[lab >= 0].ravel(), minlength=k)[:k]

    def areas(self) -> np.ndarray:
        """Pixel areas (N,) int64 of all masks."""
        per_layer = [self._counts(layer) for layer in range(len(self.layers))]
        return np.array([per_layer[lay][lab] for lay, lab in self.index], dtype=np.int64)

    def intersections(self) -> np.ndarray:
        """Pixel intersections (N, N) int64 of all pairs of masks (diagonal = areas)."""
        n = len(self.index)
        ids: dict[int, list[int]] = {}
        for i, (lay, _) in enumerate(self.index):
            ids.setdefault(lay, []).append(i)
        out = np.zeros((n, n), dtype=np.int64)
        layers = sorted(ids)
        for a_pos, la in enumerate(layers):
            ka = len(ids[la])
            out[np.ix_(ids[la], ids[la])] = np.diag(self._counts(la))  # one layer: disjoint masks
            for lb in layers[a_pos + 1 :]:
                kb = len(ids[lb])
                a, b = self.layers[la], self.layers[lb]
                both = (a >= 0) & (b >= 0)
                joint = np.bincount(a[both].astype(np.int64) * kb + b[both], minlength=ka * kb)
                block = joint.reshape(ka, kb)
                out[np.ix_(ids[la], ids[lb])] = block
                out[np.ix_(ids[lb], ids[la])] = block.T
        return out

    def ious(self) -> tuple[np.ndarray, np.ndarray]:
        """(IoU (N, N) float64, areas (N,) int64) of all masks."""
        inter = self.intersections()
        areas = np.diag(inter).copy()
        union = areas[:, None] + areas[None, :] - inter
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0), areas
