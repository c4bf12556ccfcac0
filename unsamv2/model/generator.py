"""Whole-image segmentation at a granularity (docs/architecture.md#inference).

A grid of single positive clicks (64 x 64 in the reference), each decoded at g; with the
mask-to-mask pass (``use_m2m``, on in the official evaluation) every click is decoded a second
time with its own first-pass low-resolution logits as the mask prompt, and the masks, predicted
IoU and stability score come from that second pass. Masks are filtered by predicted IoU (0.65
when g < 0.5, else 0.5, unless fixed), by stability (0.7 with offset 0.7) and by box NMS (IoU
0.7) per g. The image is embedded ONCE for all g values, and the clicks of all g go through the
decoder together, through :class:`~unsamv2.model.decoder.FastDecoder` (the same prompt encoder +
decoder, restructured for many clicks on one image; docs/model.md#speed). SAM-2's
``sam2.utils.amg`` helpers are reused for the grid, stability score and boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from unsamv2.data.rle import encode_rles, to_coco_segmentation
from unsamv2.errors import InputError
from unsamv2.model.decoder import (
    CPU_CHUNK_ELEMENTS,
    Decoded,
    DecoderContext,
    FastDecoder,
    rows_per_chunk,
)
from unsamv2.model.predictor import UnSAMv2Predictor, as_granularities, upscale_logits

if TYPE_CHECKING:
    from unsamv2.model.network import UnSAMv2Model


def iou_threshold_for(granularity: float) -> float:
    """The reference's predicted-IoU filter: 0.65 for g < 0.5 (parts are harder), else 0.5."""
    return 0.65 if granularity < 0.5 else 0.5


class UnSAMv2MaskGenerator:
    """``generate(image, granularity)`` -> list of mask records (see :meth:`generate`).

    The defaults are the official whole-image evaluation's (``coco_annotator.py`` of the
    release): points_per_side: grid size (points_per_side^2 clicks per g, 64);
    points_per_batch: at most this many clicks per decoder call (128; fewer on a CPU, see
    :meth:`decoder_batch`; the masks do not depend on it); use_m2m: the mask-to-mask second pass
    (on; off halves the decoder work and gives slightly different masks and scores);
    pred_iou_thresh: None for the g-dependent rule, or a fixed value; min_mask_region_area: > 0
    removes small islands and holes (SAM-2's post-processing, then a second NMS); multimask_iou:
    read the first pass's IoU as the max over SAM-2's three slots (the second pass always reads
    the single-mask slot, as the reference decodes it with ``multimask_output=False``);
    predictor: an existing ``UnSAMv2Predictor`` of ``model`` to share (its image embedding and
    its ``mask_threshold`` / ``multimask_iou`` are used), e.g. the one an evaluation already
    embedded the image with. :meth:`settings` reports every option that changes the masks.
    """

    def __init__(self, model: UnSAMv2Model, points_per_side: int = 64, points_per_batch: int = 128,
                 pred_iou_thresh: float | None = None, stability_score_thresh: float = 0.7,
                 stability_score_offset: float = 0.7, box_nms_thresh: float = 0.7,
                 mask_threshold: float = -1.0, min_mask_region_area: int = 0,
                 multimask_iou: bool = False, use_m2m: bool = True,
                 predictor: UnSAMv2Predictor | None = None) -> None:
        from sam2.utils.amg import build_point_grid

        if points_per_side < 1 or points_per_batch < 1:
            raise InputError("points_per_side and points_per_batch must be positive integers.")
        if predictor is not None and predictor.model is not model:
            raise InputError("the shared predictor must wrap the generator's model; pass UnSAMv2Predictor(model).")
        if predictor is not None:
            mask_threshold = predictor.mask_threshold
        self.predictor = predictor or UnSAMv2Predictor(model, mask_threshold=mask_threshold,
                                                       multimask_iou=multimask_iou)
        self.points_per_side = points_per_side
        self.point_grid = build_point_grid(points_per_side)  # (P, 2) normalised (x, y)
        self.points_per_batch = points_per_batch
        self.use_m2m = bool(use_m2m)
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.mask_threshold = mask_threshold
        self.min_mask_region_area = min_mask_region_area
        self._fast: tuple[Any, ...] | None = None  # (features, weights stamp, FastDecoder, context)

    @classmethod
    def from_settings(cls, model: UnSAMv2Model, settings: Mapping[str, Any],
                      predictor: UnSAMv2Predictor | None = None) -> UnSAMv2MaskGenerator:
        """A generator from :meth:`settings`-style keys (e.g. ``asdict`` of the evaluation's
        ``WholeImageSettings``); a ``generator`` key naming the implementation is ignored."""
        options = {k: v for k, v in settings.items() if k not in ("generator", "crop_n_layers")}
        if settings.get("crop_n_layers", 0):
            raise InputError("UnSAMv2MaskGenerator has no crop layers; use crop_n_layers=0 (the official setting).")
        return cls(model, predictor=predictor, **options)

    def settings(self) -> dict[str, Any]:
        """Every option that changes the masks or their scores (recorded in evaluation reports
        and their protocol hash): grid, batch, m2m, thresholds, NMS, small-region removal."""
        return {"points_per_side": self.points_per_side, "points_per_batch": self.points_per_batch,
                "use_m2m": self.use_m2m, "pred_iou_thresh": self.pred_iou_thresh,
                "stability_score_thresh": self.stability_score_thresh,
                "stability_score_offset": self.stability_score_offset,
                "box_nms_thresh": self.box_nms_thresh, "mask_threshold": self.mask_threshold,
                "min_mask_region_area": self.min_mask_region_area,
                "multimask_iou": self.predictor.multimask_iou}

    def generate(self, image: np.ndarray, granularity: float | Sequence[float] = 0.5,
                 ) -> list[dict[str, Any]]:
        """Masks of ``image`` ((H, W, 3) uint8 RGB) at each g, one image embedding for all.

        Each record: ``rle`` (compressed COCO RLE counts, bytes), ``segmentation`` (COCO dict
        ``{"size": [H, W], "counts": str}``), ``bbox`` [x, y, w, h] pixels, ``area`` (pixels),
        ``predicted_iou``, ``stability_score``, ``point_coords`` [[x, y]] (the click),
        ``granularity``. Sorted by g (in the order given), then by predicted IoU (descending).
        """
        gs = as_granularities(granularity)
        self.predictor.set_image(image)
        return self.generate_for_set_image(gs)

    @torch.inference_mode()
    def generate_for_set_image(self, granularity: float | Sequence[float] | np.ndarray,
                               ) -> list[dict[str, Any]]:
        """Mask records at one or more g for the image already set on ``self.predictor``.

        The clicks of all g go through the decoder together (rows g-major, at most
        ``points_per_batch`` per decoder call); filters, NMS and small-region removal act per
        g, so the records equal those of one call per g.
        """
        gs = as_granularities(granularity)
        height, width = self.predictor.image_size_hw
        grid = self.point_grid * np.array([width, height], dtype=np.float64)  # (P, 2) (x, y)
        points, group = np.tile(grid, (len(gs), 1)), np.repeat(np.arange(len(gs)), len(grid))
        fast, ctx = self._fast_decoder()
        step = self.decoder_batch()
        found = [self._process_batch(fast, ctx, points[i:i + step], gs[group[i:i + step]], group[i:i + step])
                 for i in range(0, len(points), step)]
        found = [f for f in found if f["iou"].size]
        if not found:
            return []
        keys = ("iou", "stability", "boxes", "areas", "points", "group")
        data: dict[str, Any] = {k: np.concatenate([f[k] for f in found]) for k in keys}
        data["rles"] = [r for f in found for r in f["rles"]]
        data = _select(data, self._nms(data["boxes"], data["iou"], data["group"]))
        records: list[dict[str, Any]] = []
        for k, g in enumerate(gs):
            part = _select(data, np.flatnonzero(data["group"] == k))
            if self.min_mask_region_area > 0 and len(part["iou"]):
                part = self._remove_small_regions(part, height, width)
            records += _records(part, float(g), height, width)
        return records

    def decoder_batch(self) -> int:
        """Prompts per decoder call: ``points_per_batch``, on a CPU at most as many as keep both
        the decoder's per-prompt (N, C) image-token tensors and the full-resolution (H, W) logits
        within 4 x 1024 x 1024 elements each (4 prompts at SAM-2.1 shapes, 64 for the shipped
        base on a 256-px image): below glibc's 32 MB mmap limit that memory is reused instead of
        page-faulted in afresh each call. The masks do not depend on it."""
        if self.predictor.device.type != "cpu":
            return self.points_per_batch
        height, width = self.predictor.image_size_hw
        largest = max(self.predictor.features.image_embed[0].numel(), height * width)
        return min(self.points_per_batch, rows_per_chunk(largest, 2 * CPU_CHUNK_ELEMENTS))

    def _fast_decoder(self) -> tuple[FastDecoder, DecoderContext]:
        """The inference decoder and the current image's context, rebuilt when the image or any
        decoder / prompt-encoder weight changes."""
        model, features = self.predictor.model, self.predictor.features
        if model.training:
            raise InputError("the whole-image generator runs the model in eval mode; call model.eval().")
        modules = (model.sam_prompt_encoder, model.sam_mask_decoder)
        stamp = tuple((id(p), p._version) for m in modules for p in m.parameters())
        cached = self._fast
        if cached is None or cached[0] is not features or cached[1] != stamp:
            fast = FastDecoder(*modules)
            cached = self._fast = (features, stamp, fast, fast.context(features.image_embed, features.high_res))
        return cached[2], cached[3]

    def _decode(self, fast: FastDecoder, ctx: DecoderContext, points: np.ndarray, gs: np.ndarray,
                ) -> tuple[np.ndarray, Decoded]:
        """Predicted IoU (B,) and decoder output of single positive clicks, one g each.

        points: (B, 2) float, (x, y) image pixels; gs (B,). With ``use_m2m``, the second pass's:
        each click decoded again with its own first-pass low-res logits (clamped to [-32, 32])
        as the mask prompt, its IoU read from the single-mask slot (SAM-2's ``refine_with_m2m``).
        """
        height, width = self.predictor.image_size_hw
        dev = self.predictor.device
        size = torch.tensor([width, height], dtype=torch.float32, device=dev)
        coords = torch.as_tensor(points, dtype=torch.float32, device=dev)[:, None] / size * fast.image_size
        labels = torch.ones((len(points), 1), dtype=torch.int32, device=dev)
        g = torch.as_tensor(gs, dtype=torch.float32, device=dev)
        out = fast.decode(ctx, coords, labels, g)
        if self.use_m2m:
            mask_input = fast.low_res_logits(ctx, out).clamp_(-32.0, 32.0)[:, None]
            out = fast.decode(ctx, coords, labels, g, mask_input)
            iou = out.iou_all[:, 0]
        else:
            iou = out.iou_all[:, 1:].amax(1) if self.predictor.multimask_iou else out.iou_all[:, 0]
        return iou.float().cpu().numpy(), out

    def _process_batch(self, fast: FastDecoder, ctx: DecoderContext, points: np.ndarray, gs: np.ndarray,
                       group: np.ndarray) -> dict[str, Any]:
        """Decode a batch of clicks, filter (IoU, then stability), binarise, box and encode.

        Only the rows that pass the IoU filter are upscaled (the official generator upscales all
        and then filters: same output). Full-resolution masks come from the unclamped logits."""
        from sam2.utils.amg import calculate_stability_score

        iou, out = self._decode(fast, ctx, points, gs)
        thresh = (np.array([iou_threshold_for(g) for g in gs]) if self.pred_iou_thresh is None
                  else self.pred_iou_thresh)
        keep = iou > thresh
        low_res = fast.low_res_logits(ctx, out, torch.from_numpy(keep).to(out.keys.device))
        logits = upscale_logits(low_res[:, None], self.predictor.image_size_hw)[:, 0]
        stability = calculate_stability_score(logits, self.mask_threshold, self.stability_score_offset)
        stable = stability >= self.stability_score_thresh
        if not bool(stable.all()):
            logits, stability = logits[stable], stability[stable]
        masks = logits > self.mask_threshold
        areas, boxes = mask_areas_and_boxes(masks)
        nonempty = areas > 0
        if not bool(nonempty.all()):
            masks, areas, boxes, stability = masks[nonempty], areas[nonempty], boxes[nonempty], stability[nonempty]
        rows = np.flatnonzero(keep)[stable.cpu().numpy()][nonempty.cpu().numpy()]
        return {"iou": iou[rows], "stability": stability.cpu().numpy(),
                "boxes": boxes.cpu().numpy().astype(np.float32), "areas": areas.cpu().numpy(),
                "points": points[rows], "group": group[rows], "rles": encode_rles(masks.cpu().numpy())}

    def _nms(self, boxes_xyxy: np.ndarray, scores: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
        """Box NMS within each group (g): indices kept, by decreasing score."""
        from torchvision.ops import batched_nms

        groups = np.zeros(len(scores), dtype=np.int64) if group is None else group
        keep = batched_nms(torch.from_numpy(boxes_xyxy).float(), torch.from_numpy(scores).float(),
                           torch.from_numpy(groups.astype(np.int64)), self.box_nms_thresh)
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
        data = dict(data, boxes=boxes, areas=masks.reshape(len(masks), -1).sum(1), rles=encode_rles(masks))
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


def mask_areas_and_boxes(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Areas (N,) int32 and inclusive boxes (N, 4) int64 (x0, y0, x1, y1) of (N, H, W) bool
    masks: the same boxes as ``sam2.utils.amg.batched_mask_to_box`` for non-empty masks (an
    empty one gets (0, 0, W - 1, H - 1) here, [0, 0, 0, 0] there; its area is 0), from one
    int16 row count and one byte-wise column max instead of its coordinate products."""
    height, width = masks.shape[1:]
    row_counts = masks.sum(-1, dtype=torch.int16)  # (N, H); W <= 32767, as amg's stability score assumes
    areas = row_counts.sum(-1, dtype=torch.int32)
    rows = (row_counts > 0).to(torch.uint8)
    cols = masks.view(torch.uint8).amax(1)  # (N, W)
    top, bottom = rows.argmax(1), height - 1 - rows.flip(1).argmax(1)
    left, right = cols.argmax(1), width - 1 - cols.flip(1).argmax(1)
    return areas, torch.stack((left, top, right, bottom), 1)


def _mask_box(mask: np.ndarray) -> list[float]:
    """(x0, y0, x1, y1) inclusive pixel box of a non-empty (H, W) mask."""
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _select(data: dict[str, Any], index: np.ndarray) -> dict[str, Any]:
    return {k: ([v[i] for i in index] if isinstance(v, list) else v[index]) for k, v in data.items()}


def _records(data: dict[str, Any], granularity: float, height: int, width: int) -> list[dict[str, Any]]:
    """Records of one g, by decreasing predicted IoU; bbox [x, y, w, h] from the inclusive boxes."""
    order = np.argsort(-data["iou"], kind="stable")
    records = []
    for i in order:
        x0, y0, x1, y1 = (float(v) for v in data["boxes"][i])
        records.append({
            "rle": data["rles"][i],
            "segmentation": to_coco_segmentation(data["rles"][i], height, width),
            "bbox": [x0, y0, x1 - x0 + 1.0, y1 - y0 + 1.0],
            "area": int(data["areas"][i]),
            "predicted_iou": float(data["iou"][i]),
            "stability_score": float(data["stability"][i]),
            "point_coords": [[float(v) for v in data["points"][i]]],
            "granularity": float(granularity),
        })
    return records
