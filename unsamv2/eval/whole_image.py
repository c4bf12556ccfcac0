"""Whole-image segmentation: class-agnostic average recall with pycocotools (docs/architecture.md#evaluation).

AR@k is the recall of the ground-truth masks by the top-k detections (by score) of each image,
averaged over the IoU thresholds .50:.05:.95, class-agnostic (``useCats = 0``), area range "all",
exactly as COCOeval computes it (greedy matching by score, crowd ground truth ignored).

Detections of UnSAMv2 are pooled over the 10 granularity values: every mask generated at any g
is one detection of its image, scored by its predicted IoU (:func:`pool_detections`).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unsamv2.data.rle import from_coco_segmentation, rle_areas
from unsamv2.errors import InputError

DEFAULT_MAX_DETS: tuple[int, ...] = (1, 10, 100, 1000)
Detection = dict[str, Any]  # {"image_id": int, "segmentation": {"size", "counts"}, "score": float, ...}


@dataclass(frozen=True)
class WholeImageSettings:
    """Every generator setting that changes whole-image AR; part of the evaluation config, the
    report and the protocol hash. Defaults: the official evaluation (``coco_annotator.py``).

    ``generator``: which implementation ("unsamv2", or "sam2-automatic" for SAM-2's own
    generator); ``points_per_side``: grid size (points_per_side^2 clicks per g);
    ``points_per_batch``: clicks per decoder call; ``use_m2m``: the mask-to-mask second pass;
    ``pred_iou_thresh``: None for 0.65 below g 0.5, else 0.5; ``stability_score_thresh`` /
    ``stability_score_offset`` / ``mask_threshold``: logits, stability as in SAM-2;
    ``box_nms_thresh``: per-g box NMS IoU; ``min_mask_region_area``: SAM-2's small-region
    removal (0 = off); ``crop_n_layers``: SAM-2's crop layers (0, the only value of
    ``unsamv2``'s generator and the official setting); ``multimask_iou``: the first pass's IoU from SAM-2's three slots (for
    ``sam2-automatic``: its ``multimask_output``).
    """

    generator: str = "unsamv2"
    points_per_side: int = 64
    points_per_batch: int = 128
    use_m2m: bool = True
    pred_iou_thresh: float | None = None
    stability_score_thresh: float = 0.7
    stability_score_offset: float = 0.7
    box_nms_thresh: float = 0.7
    mask_threshold: float = -1.0
    min_mask_region_area: int = 0
    crop_n_layers: int = 0
    multimask_iou: bool = False

    def __post_init__(self) -> None:
        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise InputError(f"points_per_side and points_per_batch must be positive, got "
                             f"{self.points_per_side} and {self.points_per_batch}.")
        if not 0.0 <= self.box_nms_thresh <= 1.0:
            raise InputError(f"box_nms_thresh must be in [0, 1], got {self.box_nms_thresh}.")

    @classmethod
    def of(cls, generator: Any) -> WholeImageSettings | None:
        """The settings a generator reports through ``settings()`` (None when it has none)."""
        report = getattr(generator, "settings", None)
        return cls(**report()) if callable(report) else None

    def describe(self) -> str:
        """One line for reports, e.g. "64x64 grid, m2m on, IoU > 0.65 (g < 0.5) / 0.5, ..."."""
        iou = ("0.65 (g < 0.5) / 0.5" if self.pred_iou_thresh is None else f"{self.pred_iou_thresh:g}")
        return (f"{self.generator} {self.points_per_side}x{self.points_per_side} grid, "
                f"m2m {'on' if self.use_m2m else 'off'}, IoU > {iou}, stability >= "
                f"{self.stability_score_thresh:g} (offset {self.stability_score_offset:g}, logits > "
                f"{self.mask_threshold:g}), NMS {self.box_nms_thresh:g}, {self.points_per_batch} points "
                f"per batch, min region {self.min_mask_region_area}")


def _prepare_gt(gt: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the COCO dict that COCOeval can digest: ids 1..N, area/iscrowd set, one category."""
    if "images" not in gt or "annotations" not in gt:
        raise InputError("the ground truth must be a COCO dict with 'images' and 'annotations'.")
    sizes = {int(im["id"]): (int(im["height"]), int(im["width"])) for im in gt["images"]}
    anns = []
    for k, ann in enumerate(gt["annotations"], start=1):
        image_id = int(ann["image_id"])
        if image_id not in sizes:
            raise InputError(f"annotation {ann.get('id')} refers to image {image_id}, which is not in 'images'.")
        h, w = sizes[image_id]
        counts = from_coco_segmentation(ann["segmentation"], h, w)
        anns.append({
            "id": k,  # pycocotools treats id 0 as 'unmatched': renumber from 1
            "image_id": image_id,
            "category_id": 1,
            "segmentation": {"size": [h, w], "counts": counts},
            "area": float(ann["area"]) if "area" in ann else float(rle_areas([counts], h, w)[0]),
            "iscrowd": int(bool(ann.get("iscrowd", 0))),
        })
    return {"images": [{"id": i, "height": h, "width": w} for i, (h, w) in sizes.items()],
            "annotations": anns, "categories": [{"id": 1, "name": "object"}]}


def _prepare_dets(dets: Iterable[Mapping[str, Any]], sizes: Mapping[int, tuple[int, int]]) -> list[dict]:
    out = []
    for det in dets:
        image_id = int(det["image_id"])
        if image_id not in sizes:
            raise InputError(f"a detection refers to image {image_id}, which is not in the ground truth.")
        h, w = sizes[image_id]
        seg = det["segmentation"]
        counts = seg if isinstance(seg, bytes | bytearray) else from_coco_segmentation(seg, h, w)
        out.append({"image_id": image_id, "category_id": 1, "score": float(det["score"]),
                    "segmentation": {"size": [h, w], "counts": bytes(counts)}})
    return out


def average_recall(
    gt: Mapping[str, Any],
    detections: Sequence[Mapping[str, Any]],
    max_dets: Sequence[int] = DEFAULT_MAX_DETS,
) -> dict[int, float]:
    """Class-agnostic mask AR at each ``max_dets`` value, in [0, 1].

    ``gt``: a COCO dict (``images`` with id/height/width, ``annotations`` with image_id,
    segmentation as polygons or RLE, optional iscrowd; categories are ignored). ``detections``:
    ``{"image_id", "segmentation" (RLE dict or compressed-RLE bytes), "score"}``. No detections
    gives AR 0 for every k. Returns ``{k: AR@k}``.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ks = sorted({int(k) for k in max_dets})
    if not ks or ks[0] < 1:
        raise InputError(f"max_dets must be positive integers, got {list(max_dets)}.")
    gt_dict = _prepare_gt(gt)
    if not any(not a["iscrowd"] for a in gt_dict["annotations"]):
        raise InputError("the ground truth has no (non-crowd) object; AR is undefined without objects.")
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt_dict["images"]}
    dets = _prepare_dets(detections, sizes)
    if not dets:
        return {k: 0.0 for k in ks}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        ev = COCOeval(coco_gt, coco_dt, iouType="segm")
        ev.params.useCats = 0
        ev.params.maxDets = ks
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.evaluate()
        ev.accumulate()
    recall = ev.eval["recall"]  # (T, K=1, A=1, M)
    out = {}
    for m, k in enumerate(ks):
        r = recall[:, 0, 0, m]
        r = r[r > -1]
        out[k] = float(r.mean()) if r.size else 0.0
    return out


def _counts_of(seg: Any, h: int, w: int) -> bytes:
    return bytes(seg) if isinstance(seg, bytes | bytearray) else from_coco_segmentation(seg, h, w)


def pool_detections(
    image_id: int,
    records: Iterable[Mapping[str, Any]],
    height: int,
    width: int,
    *,
    granularities: Sequence[float] | None = None,
) -> list[Detection]:
    """Detections of one image from a generator's mask records, pooled over granularity values.

    ``records``: the output of ``MaskGenerator.generate`` (``segmentation`` RLE dict or bytes,
    ``predicted_iou``, ``granularity``). Every record becomes one detection scored by its
    predicted IoU; ``granularities`` keeps only records generated at those g (for AR by g).
    Detections are sorted by score, highest first; ``granularity`` is kept on each.
    """
    keep = None if granularities is None else {round(float(g), 6) for g in granularities}
    dets: list[dict[str, Any]] = []
    for rec in records:
        g = float(rec["granularity"])
        if keep is not None and round(g, 6) not in keep:
            continue
        counts = _counts_of(rec["segmentation"], height, width)
        dets.append({"image_id": int(image_id), "score": float(rec["predicted_iou"]), "granularity": g,
                     "segmentation": {"size": [int(height), int(width)], "counts": counts}})
    dets.sort(key=lambda d: -d["score"])
    return dets


def ar_by_granularity(
    gt: Mapping[str, Any],
    detections: Sequence[Mapping[str, Any]],
    granularities: Sequence[float],
    max_det: int = 1000,
) -> dict[float, float]:
    """AR@``max_det`` of the detections of each single g (``granularity`` key), for the AR-by-g plot."""
    out = {}
    for g in granularities:
        subset = [d for d in detections if np.isclose(float(d["granularity"]), float(g))]
        out[float(g)] = average_recall(gt, subset, (max_det,))[max_det]
    return out
