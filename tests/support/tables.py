"""Small builders of mask-table rows for the data tests."""

from __future__ import annotations

import numpy as np

from unsamv2.data import encode_rles, image_row, mask_record, rle_areas, rle_bboxes


def make_row(image_id: int, h: int = 12, w: int = 16, n_masks: int = 3, seed: int = 0) -> dict:
    """An ``ok`` row with ``n_masks`` random rectangle masks and granularity fields."""
    rng = np.random.default_rng(seed + image_id)
    stack = np.zeros((n_masks, h, w), bool)
    for k in range(n_masks):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        stack[k, y0 : y0 + rng.integers(1, h // 2 + 1), x0 : x0 + rng.integers(1, w // 2 + 1)] = True
    counts = encode_rles(stack)
    areas, boxes = rle_areas(counts, h, w), rle_bboxes(counts, h, w)
    masks = [
        mask_record(c, b, a, granularity=0.1 + 0.9 * k / max(n_masks - 1, 1), instance_id=0,
                    is_part=k < n_masks - 1, origin="conquer" if k < n_masks - 1 else "divide", score=0.5)
        for k, (c, b, a) in enumerate(zip(counts, boxes, areas, strict=True))
    ]
    return image_row(image_id=image_id, image_uri=f"/images/{image_id}.png", producer_config_hash="cfg",
                     content_hash=f"{image_id:064x}", height=h, width=w, masks=masks)


def error_row(image_id: int, reason: str = "truncated") -> dict:
    return image_row(image_id=image_id, image_uri=f"/images/{image_id}.jpg", producer_config_hash="cfg",
                     error=reason, error_message="image data ends early")
