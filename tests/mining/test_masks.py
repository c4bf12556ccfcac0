"""Upsampling, exact IoU from label layers, NMS, protected NMS, containment and granularity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unsamv2.errors import InputError
from unsamv2.mining.granularity import granularity_scores
from unsamv2.mining.masks import (
    LabelLayers,
    bbox_of,
    contained,
    instance_part_relation,
    mask_iou,
    nms,
    protected_nms,
    upsample_labels,
)


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@pytest.mark.parametrize("seed", range(4))
def test_upsample_labels_equals_bilinear_threshold_per_label(seed):
    rng = np.random.default_rng(seed)
    grid = rng.integers(-1, 4, size=(rng.integers(1, 7), rng.integers(1, 7)))
    h, w = int(rng.integers(5, 40)), int(rng.integers(5, 40))
    out = upsample_labels(grid, h, w)
    for lab in range(4):
        ind = torch.tensor((grid == lab).astype(np.float32))[None, None]
        up = torch.nn.functional.interpolate(ind, size=(h, w), mode="bilinear", align_corners=False)
        want = up[0, 0].numpy() > 0.5
        np.testing.assert_array_equal(out == lab, want)


def test_label_layers_intersections_equal_brute_force():
    rng = np.random.default_rng(0)
    layers = LabelLayers(20, 30)
    masks = []
    for _ in range(3):
        lab = rng.integers(-1, 5, size=(20, 30)).astype(np.int32)
        layers.add_layer(lab)
        masks += [lab == k for k in range(int(lab.max()) + 1)]
    extra = rng.random((20, 30)) > 0.5
    layers.add_mask(extra)
    masks.append(extra)
    stack = np.stack(masks)
    flat = stack.reshape(len(masks), -1).astype(np.int64)
    np.testing.assert_array_equal(layers.intersections(), flat @ flat.T)
    iou, areas = layers.ious()
    np.testing.assert_allclose(iou, mask_iou(stack, stack), atol=1e-6)
    np.testing.assert_array_equal(areas, flat.sum(1))
    np.testing.assert_array_equal(layers.mask(len(masks) - 1), extra)


def test_nms_is_exact_and_by_decreasing_area():
    shape = (200, 200)
    big = disk(shape, 40, 40, 20)  # ~1257 px
    near = disk(shape, 40, 40, 19.5)  # IoU with big ~0.95, ~1195 px
    squares = []
    for k in range(5):  # 1225 px each: between big and near in area order, disjoint from both
        m = np.zeros(shape, bool)
        m[120:155, 5 + 39 * k : 40 + 39 * k] = True
        squares.append(m)
    masks = np.stack([near, *squares, big])
    kept = nms(masks, 0.8)
    # the reference release compares a mask only with the next 4 by area and would keep `near`
    assert kept == [6, 1, 2, 3, 4, 5]


def test_protected_nms_keeps_protected_and_drops_its_duplicates():
    shape = (64, 64)
    inst = disk(shape, 32, 32, 20)
    dup = disk(shape, 32, 32, 19)  # IoU with inst > 0.8
    part_a = disk(shape, 25, 32, 8)
    part_b = disk(shape, 25, 32, 8) | disk(shape, 25, 24, 1)  # duplicate of part_a
    kept = protected_nms(inst[None], np.stack([dup, part_a, part_b]), 0.8)
    assert kept == [2] or kept == [1]
    assert 0 not in kept and len(kept) == 1
    assert protected_nms(inst[None], np.zeros((0, 64, 64), bool)) == []


def test_containment_and_instance_part_relation():
    shape = (100, 100)
    a = disk(shape, 50, 50, 30)  # 28% of the image: instance
    b = disk(shape, 50, 50, 10) & a  # inside a: part of a
    c = disk(shape, 10, 90, 5)  # 0.8% of the image: too small to be an instance
    d = np.zeros(shape, bool)
    d[:, :60] = True  # 60%: contains neither fully... b is inside d too
    assert contained(b, a) and not contained(a, b) and not contained(np.zeros(shape, bool), a)
    rel = instance_part_relation(np.stack([a, b, c, d]), 0.05, 0.8)
    assert set(rel) == {0, 3}
    assert rel[0] == [1] and rel[3] == [1]
    exactly5 = np.zeros(shape, bool)
    exactly5[:5, :] = True  # area == 5%: not > 5%
    assert instance_part_relation(exactly5[None]) == {}


def test_bbox_and_bad_stacks():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert bbox_of(m) == (3.0, 2.0, 6.0, 3.0)
    assert bbox_of(np.zeros((4, 4), bool)) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(InputError):
        nms(np.zeros((4, 4), bool))


def test_granularity_rule():
    g = granularity_scores([100, 400, 900])
    np.testing.assert_allclose(g, [0.1, 0.1 + 0.9 * (20 - 10) / (30 - 10), 1.0])
    assert granularity_scores([50]).tolist() == [1.0]
    assert granularity_scores([7, 7, 7]).tolist() == [1.0, 1.0, 1.0]
    assert granularity_scores([]).shape == (0,)
    with pytest.raises(InputError):
        granularity_scores([1, -1])
