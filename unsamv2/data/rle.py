"""COCO run-length encoding helpers on top of ``pycocotools.mask``.

Masks are stored as COCO *compressed* RLE: the ``counts`` byte string of pycocotools, with the
image size (height, width) kept next to it (in the mask table: the row's ``height``/``width``).
pycocotools wants Fortran-ordered ``uint8`` arrays of shape (H, W, N); these helpers take the
usual C-ordered (H, W) / (N, H, W) boolean arrays and do the conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from unsamv2.errors import InputError


def _as_stack(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise InputError(f"masks must be an (N, H, W) array, got shape {masks.shape}; stack them first.")
    return masks


def encode_rles(masks: np.ndarray) -> list[bytes]:
    """Encode masks (N, H, W) bool/uint8 into N compressed RLE ``counts`` byte strings."""
    masks = _as_stack(masks)
    if masks.shape[0] == 0:
        return []
    fortran = np.asfortranarray(np.moveaxis(masks.astype(bool, copy=False), 0, -1), dtype=np.uint8)
    return [r["counts"] for r in mask_utils.encode(fortran)]


def encode_rle(mask: np.ndarray) -> bytes:
    """Encode one mask (H, W) bool/uint8 into a compressed RLE ``counts`` byte string."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"a mask must be an (H, W) array, got shape {mask.shape}.")
    return encode_rles(mask[None])[0]


def _rle_objs(counts: Sequence[bytes], height: int, width: int) -> list[dict[str, Any]]:
    return [{"size": [int(height), int(width)], "counts": bytes(c)} for c in counts]


def decode_rles(counts: Sequence[bytes], height: int, width: int) -> np.ndarray:
    """Decode compressed RLE byte strings into masks (N, H, W) bool (C-ordered)."""
    if len(counts) == 0:
        return np.zeros((0, int(height), int(width)), dtype=bool)
    decoded = mask_utils.decode(_rle_objs(counts, height, width))  # (H, W, N) uint8, Fortran
    return np.ascontiguousarray(np.moveaxis(decoded, -1, 0)).astype(bool)


def decode_rle(counts: bytes, height: int, width: int) -> np.ndarray:
    """Decode one compressed RLE byte string into a mask (H, W) bool."""
    return decode_rles([counts], height, width)[0]


_AREA_CHUNK = 255


def rle_areas(counts: Sequence[bytes], height: int, width: int) -> np.ndarray:
    """Pixel counts (N,) int64 of RLE masks, without decoding them.

    pycocotools' ``area`` keeps the count of a call in a uint8 (2.0.11 raises OverflowError from 256
    masks on), so the masks go through it in chunks of 255."""
    if len(counts) == 0:
        return np.zeros(0, dtype=np.int64)
    objs = _rle_objs(counts, height, width)
    return np.concatenate([np.asarray(mask_utils.area(objs[i : i + _AREA_CHUNK]), dtype=np.int64).reshape(-1)
                           for i in range(0, len(objs), _AREA_CHUNK)])


def rle_bboxes(counts: Sequence[bytes], height: int, width: int) -> np.ndarray:
    """Boxes (N, 4) float64 in COCO (x, y, w, h) pixels of RLE masks, without decoding them."""
    if len(counts) == 0:
        return np.zeros((0, 4), dtype=np.float64)
    return np.asarray(mask_utils.toBbox(_rle_objs(counts, height, width)), dtype=np.float64).reshape(-1, 4)


def to_coco_segmentation(counts: bytes, height: int, width: int) -> dict[str, Any]:
    """The COCO JSON form of a compressed RLE: ``{"size": [H, W], "counts": str}``."""
    return {"size": [int(height), int(width)], "counts": bytes(counts).decode("ascii")}


def from_coco_segmentation(segmentation: Any, height: int, width: int) -> bytes:
    """Compressed RLE bytes from any COCO ``segmentation``: polygons, uncompressed or compressed RLE.

    ``height``/``width`` are the image size; an RLE whose ``size`` disagrees is an error.
    """
    if isinstance(segmentation, list):  # polygons [[x0, y0, x1, y1, ...], ...]
        polys = [p for p in segmentation if len(p) >= 6]
        if not polys:
            return encode_rle(np.zeros((height, width), dtype=bool))
        rles = mask_utils.frPyObjects(polys, int(height), int(width))
        return mask_utils.merge(rles)["counts"]
    if isinstance(segmentation, dict) and "counts" in segmentation:
        size = [int(s) for s in segmentation.get("size", (height, width))]
        if size != [int(height), int(width)]:
            raise InputError(
                f"segmentation size {size} does not match the image size {[height, width]}; "
                "fix the annotation's 'size' or the image's height/width."
            )
        counts = segmentation["counts"]
        if isinstance(counts, list):  # uncompressed RLE
            return mask_utils.frPyObjects(segmentation, size[0], size[1])["counts"]
        return counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    raise InputError(
        "segmentation must be a list of polygons or an RLE dict with 'size' and 'counts'; "
        f"got {type(segmentation).__name__}."
    )
