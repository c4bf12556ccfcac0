"""A tiny deterministic miner for engine tests: intensity bands of the image become masks."""

from __future__ import annotations

from typing import Any

import numpy as np

from unsamv2.data import encode_rles, mask_record, rle_areas, rle_bboxes


class BandMiner:
    """Masks = pixels whose mean intensity falls in each of 3 bands (non-empty ones); g by band."""

    def mine_records(self, image: np.ndarray, image_uri: str) -> list[dict[str, Any]]:
        gray = image.mean(axis=2)
        stack = np.stack([(gray >= lo) & (gray < hi) for lo, hi in ((0, 85), (85, 170), (170, 256))])
        stack = stack[stack.any(axis=(1, 2))]
        h, w = gray.shape
        counts = encode_rles(stack)
        return [mask_record(c, b, a, granularity=1.0, instance_id=i, is_part=False, origin="divide")
                for i, (c, b, a) in enumerate(zip(counts, rle_bboxes(counts, h, w), rle_areas(counts, h, w), strict=True))]

    def config_hash(self) -> str:
        return "band-miner"


def band_miner() -> BandMiner:
    return BandMiner()
