"""Multi-scale divide (MaskCut on overlapping crops), the per-view instance floor, the scene group."""

from __future__ import annotations

import numpy as np
import pytest

from unsamv2.errors import InputError
from unsamv2.mining import Miner, MinerConfig
from unsamv2.mining.divide import crop_boxes, divide_image
from unsamv2.mining.masks import instance_part_relation, mask_iou

FAST = dict(divide_long_side=480, conquer_long_side=256, rounds=3)


def six_discs(size=256):
    """Grey background with six small discs of distinct colours (1.5 % of the image each)."""
    yy, xx = np.mgrid[:size, :size]
    img = np.full((size, size, 3), 120, np.uint8)
    colours = [(220, 30, 30), (30, 200, 40), (30, 60, 220), (230, 210, 40), (200, 40, 200), (40, 210, 210)]
    centres = [(0.2, 0.2), (0.2, 0.8), (0.8, 0.2), (0.8, 0.8), (0.5, 0.25), (0.5, 0.75)]
    discs = []
    for (cy, cx), colour in zip(centres, colours, strict=True):
        disc = (yy - cy * size) ** 2 + (xx - cx * size) ** 2 <= (0.07 * size) ** 2
        img[disc] = colour
        discs.append(disc)
    rng = np.random.default_rng(0)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8), discs


def test_crop_boxes_tile_the_image_with_a_quarter_overlap():
    assert crop_boxes(100, 80, 1) == [(0, 0, 100, 80)]
    boxes = crop_boxes(100, 100, 2)
    assert boxes == [(0, 0, 58, 58), (0, 42, 58, 100), (42, 0, 100, 58), (42, 42, 100, 100)]
    covered = np.zeros((100, 100), int)
    for y0, x0, y1, x1 in crop_boxes(100, 100, 3):
        covered[y0:y1, x0:x1] += 1
        assert y1 - y0 == x1 - x0 == 40  # 100 / (3 - 2 * 0.25)
    assert covered.min() >= 1 and covered.max() == 4  # every pixel seen; corners of four crops overlap
    with pytest.raises(InputError):
        crop_boxes(10, 10, 0)


def test_crops_find_small_objects_that_the_whole_image_misses():
    img, discs = six_discs()
    found = {}
    for crops in (1, 2):
        cfg = MinerConfig(**FAST, divide_crops=crops, scene_group=False)
        divided = divide_image(img, Miner(cfg).backbone, cfg)
        best = mask_iou(np.stack(discs), divided.masks).max(axis=1) if len(divided.masks) else np.zeros(6)
        found[crops] = int((best >= 0.5).sum())
        assert divided.view_areas.shape == (len(divided.masks),)
        n_whole = int((divided.view_areas == 1.0).sum())
        assert n_whole <= cfg.rounds and np.all(divided.view_areas[:n_whole] == 1.0)
        crop_area = 147 * 147 / 256**2  # crop side ceil(256 / 1.75)
        assert np.allclose(divided.view_areas[n_whole:], crop_area)
        iou = mask_iou(divided.masks, divided.masks)
        np.fill_diagonal(iou, 0.0)
        assert (iou <= cfg.maskcut_max_iou).all()  # MaskCut's IoU rule holds across views
    assert found[1] <= 2 and found[2] >= 4, found


def test_instance_floor_is_relative_to_the_view():
    mask = np.zeros((1, 100, 100), bool)
    mask[0, :3, :] = True  # 3 % of the image
    assert instance_part_relation(mask, 0.05) == {}
    assert instance_part_relation(mask, 0.05, view_areas=np.array([1.0])) == {}
    assert instance_part_relation(mask, 0.05, view_areas=np.array([0.33])) == {0: []}  # 3 % > 5 % of 33 %
    with pytest.raises(InputError, match="view_areas"):
        instance_part_relation(mask, 0.05, view_areas=np.ones(2))


def test_scene_group_conquers_the_whole_image():
    img, discs = six_discs()
    without = Miner(MinerConfig(**FAST, maskcut_min_area=0.99, scene_group=False)).mine(img)
    assert without == []  # no divide candidate, no instance
    mined = Miner(MinerConfig(**FAST, maskcut_min_area=0.99)).mine(img)
    assert mined and {m.instance_id for m in mined} == {0}
    assert all(m.origin == "conquer" and m.is_part for m in mined)  # the image itself is no mask
    assert all(m.mask.mean() < 0.99 and 0.1 <= m.granularity < 1.0 for m in mined)  # g relative to the image
    best = mask_iou(np.stack(discs), np.stack([m.mask for m in mined])).max(axis=1)
    assert (best >= 0.5).all() and (best >= 0.7).sum() >= 3, best  # the discs come back as regions of the scene


def test_scene_group_comes_last_after_the_instances():
    img, _ = six_discs()
    plain = Miner(MinerConfig(**FAST, scene_group=False)).mine(img)
    mined = Miner(MinerConfig(**FAST)).mine(img)
    n_groups = len({m.instance_id for m in plain})
    assert all(np.array_equal(a.mask, b.mask) and a.granularity == b.granularity
               for a, b in zip(mined[: len(plain)], plain, strict=True))  # the instance groups are unchanged
    scene = [m for m in mined if m.instance_id == n_groups]
    assert scene and len(mined) == len(plain) + len(scene)
    levels = len(MinerConfig().thresholds)
    assert max(m.score for m in scene) <= 1 / levels <= min(m.score for m in plain)  # the scene ranks last


@pytest.mark.parametrize("bad", [dict(divide_crops=0), dict(divide_crop_grid=1), dict(scene_group="yes"),
                                 dict(divide_crops=True)])
def test_bad_new_options(bad):
    with pytest.raises(InputError):
        MinerConfig(**bad)
