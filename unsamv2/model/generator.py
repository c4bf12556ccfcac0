"""Whole-image segmentation at a granularity (DESIGN.md 2.4).

A grid of single positive clicks (64 x 64 in the reference), each decoded at g; masks filtered
by predicted IoU (0.65 when g < 0.5, else 0.5, unless fixed), by stability (0.7 with offset
0.7) and by box NMS (IoU 0.7) per g. The image is embedded ONCE for all g values. SAM-2's
``sam2.utils.amg`` helpers are reused for the grid, stability score, boxes and small regions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from unsamv2.data.rle import encode_rles, to_coco_segmentation
from unsamv2.errors import InputError
from unsamv2.model.predictor import UnSAMv2Predictor, as_granularities, upscale_logits

if TYPE_CHECKING:
    from unsamv2.model.network import UnSAMv2Model


def iou_threshold_for(granularity: float) -> float:
    """The reference's predicted-IoU filter: 0.65 for g < 0.5 (parts are harder), else 0.5."""
    return 0.65 if granularity < 0.5 else 0.5


class UnSAMv2MaskGenerator:
    """``generate(image, granularity)`` -> list of mask records (see :meth:`generate`).

    points_per_side: grid size (points_per_side^2 clicks per g); points_per_batch: clicks per
    decoder call (full-resolution logits of a batch are held in memory: keep it moderate for
    large images); pred_iou_thresh: None for the g-dependent rule, or a fixed value;
    min_mask_region_area: > 0 removes small islands and holes (SAM-2's post-processing, then a
    second NMS); predictor: an existing ``UnSAMv2Predictor`` of ``model`` to share (its image
    embedding and its ``mask_threshold`` / ``multimask_iou`` are used), e.g. the one an evaluation
    already embedded the image with.
    """

    def __init__(self, model: UnSAMv2Model, points_per_side: int = 64, points_per_batch: int = 64,
                 pred_iou_thresh: float | None = None, stability_score_thresh: float = 0.7,
                 stability_score_offset: float = 0.7, box_nms_thresh: float = 0.7,
                 mask_threshold: float = -1.0, min_mask_region_area: int = 0,
                 multimask_iou: bool = False, predictor: UnSAMv2Predictor | None = None) -> None:
        from sam2.utils.amg import build_point_grid

        if points_per_side < 1 or points_per_batch < 1:
            raise InputError("points_per_side and points_per_batch must be positive integers.")
        if predictor is not None and predictor.model is not model:
            raise InputError("the shared predictor must wrap the generator's model; pass UnSAMv2Predictor(model).")
        if predictor is not None:
            mask_threshold = predictor.mask_threshold
        self.predictor = predictor or UnSAMv2Predictor(model, mask_threshold=mask_threshold,
                                                       multimask_iou=multimask_iou)
        self.point_grid = build_point_grid(points_per_side)  # (P, 2) normalised (x, y)
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.mask_threshold = mask_threshold
        self.min_mask_region_area = min_mask_region_area

    def generate(self, image: np.ndarray, granularity: float | Sequence[float] = 0.5,
                 ) -> list[dict[str, Any]]:
        """Masks of ``image`` ((H, W, 3) uint8 RGB) at each g, one image embedding for all.

        Each record: ``rle`` (compressed COCO RLE counts, bytes), ``segmentation`` (COCO dict
        ``{"size": [H, W], "counts": str}``), ``bbox`` [x, y, w, h] pixels, ``area`` (pixels),
        ``predicted_iou``, ``stability_score``, ``point_coords`` [[x, y]] (the click),
        ``granularity``. Sorted by g, then by predicted IoU (descending).
        """
        gs = as_granularities(granularity)
        self.predictor.set_image(image)
        records: list[dict[str, Any]] = []
        for g in gs:
            records.extend(self.generate_for_set_image(float(g)))
        return records

    @torch.inference_mode()
    def generate_for_set_image(self, granularity: float) -> list[dict[str, Any]]:
        """Mask records at one g for the image already set on ``self.predictor``."""
        height, width = self.predictor.image_size_hw
        points = self.point_grid * np.array([width, height], dtype=np.float64)
        found = [self._process_batch(points[i:i + self.points_per_batch], granularity)
                 for i in range(0, len(points), self.points_per_batch)]
        found = [f for f in found if f["iou"].size]
        if not found:
            return []
        data = {k: np.concatenate([f[k] for f in found]) for k in ("iou", "stability", "boxes", "points")}
        data["rles"] = [r for f in found for r in f["rles"]]
        keep = self._nms(data["boxes"], data["iou"])
        data = _select(data, keep)
        if self.min_mask_region_area > 0:
            data = self._remove_small_regions(data, height, width)
        return _records(data, granularity, height, width)

    def _process_batch(self, points: np.ndarray, granularity: float) -> dict[str, Any]:
        """Decode a batch of single clicks at g, filter, binarise and encode (full resolution)."""
        from sam2.utils.amg import batched_mask_to_box, calculate_stability_score

        count = len(points)
        _, iou, low_res = self.predictor.predict_batch(
            points[:, None, :], np.ones((count, 1), dtype=np.int32),
            np.full(count, granularity, dtype=np.float32), return_masks=False)
        thresh = iou_threshold_for(granularity) if self.pred_iou_thresh is None else self.pred_iou_thresh
        keep = iou > thresh
        logits = upscale_logits(torch.from_numpy(low_res[keep])[:, None], self.predictor.image_size_hw)[:, 0]
        stability = calculate_stability_score(logits, self.mask_threshold, self.stability_score_offset)
        stable = (stability >= self.stability_score_thresh).numpy()
        masks = logits[torch.from_numpy(stable)] > self.mask_threshold
        boxes = batched_mask_to_box(masks).numpy().astype(np.float32)
        nonempty = masks.flatten(1).any(1).numpy()
        masks = masks[torch.from_numpy(nonempty)].numpy()
        return {"iou": iou[keep][stable][nonempty], "stability": stability.numpy()[stable][nonempty],
                "boxes": boxes[nonempty], "points": points[keep][stable][nonempty],
                "rles": encode_rles(masks)}

    def _nms(self, boxes_xyxy: np.ndarray, scores: np.ndarray) -> np.ndarray:
        from torchvision.ops import batched_nms

        keep = batched_nms(torch.from_numpy(boxes_xyxy).float(), torch.from_numpy(scores).float(),
                           torch.zeros(len(scores), dtype=torch.int64), self.box_nms_thresh)
        return keep.numpy()

    def _remove_small_regions(self, data: dict[str, Any], height: int, width: int) -> dict[str, Any]:
        """SAM-2's post-processing: fill small holes, drop small islands, then NMS preferring
        masks that did not change."""
        from unsamv2.data.rle import decode_rles

        masks = decode_rles(data["rles"], height, width)
        changed = np.zeros(len(masks), dtype=bool)
        for i, mask in enumerate(masks):
            for mode in ("holes", "islands"):
                mask, modified = remove_small_regions(mask, self.min_mask_region_area, mode)
                changed[i] |= modified
            masks[i] = mask
        nonempty = np.flatnonzero(masks.reshape(len(masks), -1).any(1))
        masks, data, changed = masks[nonempty], _select(data, nonempty), changed[nonempty]
        boxes = np.array([_mask_box(m) for m in masks], dtype=np.float32).reshape(-1, 4)
        data = dict(data, boxes=boxes, rles=encode_rles(masks))
        return _select(data, self._nms(boxes, (~changed).astype(np.float32)))


def remove_small_regions(mask: np.ndarray, min_area: int, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (``mode="holes"``) or remove islands (``"islands"``) smaller than ``min_area``
    pixels (8-connected) in an (H, W) bool mask; returns (mask, changed). When every island is
    small, the largest one is kept."""
    from scipy import ndimage

    working = ~mask if mode == "holes" else mask
    labels, count = ndimage.label(working, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return mask, False
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    small = np.flatnonzero(sizes < min_area) + 1
    if small.size == 0:
        return mask, False
    if mode == "holes":
        return mask | np.isin(labels, small), True
    keep = np.setdiff1d(np.arange(1, count + 1), small)
    if keep.size == 0:
        keep = np.array([int(np.argmax(sizes)) + 1])
    return np.isin(labels, keep), True


def _mask_box(mask: np.ndarray) -> list[float]:
    """(x0, y0, x1, y1) inclusive pixel box of a non-empty (H, W) mask."""
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _select(data: dict[str, Any], index: np.ndarray) -> dict[str, Any]:
    return {k: ([v[i] for i in index] if isinstance(v, list) else v[index]) for k, v in data.items()}


def _records(data: dict[str, Any], granularity: float, height: int, width: int) -> list[dict[str, Any]]:
    from unsamv2.data.rle import rle_areas, rle_bboxes

    areas = rle_areas(data["rles"], height, width)
    bboxes = rle_bboxes(data["rles"], height, width)
    order = np.argsort(-data["iou"], kind="stable")
    records = []
    for i in order:
        records.append({
            "rle": data["rles"][i],
            "segmentation": to_coco_segmentation(data["rles"][i], height, width),
            "bbox": [float(v) for v in bboxes[i]],
            "area": int(areas[i]),
            "predicted_iou": float(data["iou"][i]),
            "stability_score": float(data["stability"][i]),
            "point_coords": [[float(v) for v in data["points"][i]]],
            "granularity": float(granularity),
        })
    return records
