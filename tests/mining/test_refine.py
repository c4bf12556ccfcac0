"""Guided-filter refinement: snaps a blocky mask to the image edge; rejects wild changes."""

from __future__ import annotations

import numpy as np

from unsamv2.mining import Miner, MinerConfig
from unsamv2.mining.refine import refine_mask


def test_refinement_snaps_a_grid_mask_to_a_colour_edge():
    from unsamv2.mining.masks import upsample_masks

    yy, xx = np.mgrid[:256, :256]
    disc = (yy - 128) ** 2 + (xx - 120) ** 2 <= 70**2
    # red on blue of equal grey level: only a colour guide sees this edge
    img = np.where(disc[..., None], (220, 40, 40), (40, 60, 200)).astype(np.uint8)
    grid = disc.reshape(16, 16, 16, 16).mean(axis=(1, 3)) > 0.5
    blocky = upsample_masks(grid[None], 256, 256)[0]
    refined = refine_mask(img, blocky)

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    assert iou(refined, disc) > iou(blocky, disc) + 0.015
    assert not refine_mask(img, np.zeros_like(disc)).any()
    noise = np.zeros_like(disc)
    noise[::7, ::5] = True  # refinement that would change the mask completely is rejected
    np.testing.assert_array_equal(refine_mask(img, noise), noise)


def test_miner_with_refinement_runs():
    yy, xx = np.mgrid[:96, :96]
    img = np.full((96, 96, 3), 120, np.uint8)
    img[(yy - 48) ** 2 + (xx - 40) ** 2 < 25**2] = (210, 40, 40)
    mined = Miner(MinerConfig(divide_long_side=320, conquer_long_side=192, refine=True)).mine(img)
    assert mined and all(m.area == m.mask.sum() and 0.1 <= m.granularity <= 1.0 for m in mined)
