"""Whole-image generation at granularities on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from unsamv2.data.rle import decode_rle, from_coco_segmentation
from unsamv2.errors import InputError
from unsamv2.model import UnSAMv2MaskGenerator
from unsamv2.model.generator import iou_threshold_for, remove_small_regions


@pytest.fixture(scope="module")
def records(tiny_model, photo):
    # thresholds off: random weights give low IoU predictions; the filters are tested separately
    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=6, points_per_batch=16,
                               pred_iou_thresh=0.0, stability_score_thresh=0.0, mask_threshold=0.0)
    return gen.generate(photo, [0.2, 0.9])


def test_records_are_sane(records, photo):
    height, width = photo.shape[:2]
    assert records and {r["granularity"] for r in records} == {0.2, 0.9}
    for r in records:
        mask = decode_rle(r["rle"], height, width)
        assert mask.any() and int(mask.sum()) == r["area"]
        ys, xs = np.nonzero(mask)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert from_coco_segmentation(r["segmentation"], height, width) == r["rle"]
        assert 0.0 <= r["predicted_iou"] <= 1.0 and 0.0 <= r["stability_score"] <= 1.0
        (x, y), = r["point_coords"]
        assert 0 <= x < width and 0 <= y < height
    for g in (0.2, 0.9):
        ious = [r["predicted_iou"] for r in records if r["granularity"] == g]
        assert ious == sorted(ious, reverse=True)


def test_nms_removes_duplicates(tiny_model, photo):
    import torch
    from torchvision.ops import box_iou

    options = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                   mask_threshold=0.0)
    every = UnSAMv2MaskGenerator(tiny_model, box_nms_thresh=1.0, **options).generate(photo, 0.4)
    kept = UnSAMv2MaskGenerator(tiny_model, box_nms_thresh=0.7, **options).generate(photo, 0.4)
    assert len(every) == 16 and 0 < len(kept) < len(every)
    boxes = torch.tensor([[b[0], b[1], b[0] + b[2] - 1, b[1] + b[3] - 1]
                          for b in (r["bbox"] for r in kept)])
    assert float(box_iou(boxes, boxes).fill_diagonal_(0).max()) <= 0.7 + 1e-6


def test_one_image_embedding_for_all_granularities(tiny_model, photo, monkeypatch):
    calls = []
    original = tiny_model.encode_image
    monkeypatch.setattr(tiny_model, "encode_image", lambda x: calls.append(1) or original(x))
    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=3, points_per_batch=9)
    gen.generate(photo, [0.1, 0.3, 0.5, 0.7, 1.0])
    assert len(calls) == 1


def test_filters_follow_the_reference_thresholds(tiny_model, photo):
    assert iou_threshold_for(0.1) == iou_threshold_for(0.49) == 0.65
    assert iou_threshold_for(0.5) == iou_threshold_for(1.0) == 0.5
    everything = UnSAMv2MaskGenerator(tiny_model, points_per_side=4, pred_iou_thresh=0.0,
                                      stability_score_thresh=0.0, box_nms_thresh=1.0)
    strict = UnSAMv2MaskGenerator(tiny_model, points_per_side=4, pred_iou_thresh=0.99)
    found = everything.generate(photo, 0.5)
    assert len(found) > 0 and strict.generate(photo, 0.5) == []
    assert all(r["predicted_iou"] > 0.0 for r in found)


def test_small_region_removal():
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:12, 2:12] = True
    mask[5, 5] = False          # a 1-pixel hole
    mask[17:19, 17:19] = True   # a 4-pixel island
    filled, changed = remove_small_regions(mask, 3, "holes")
    assert changed and filled[5, 5] and filled[17, 17]
    cleaned, changed = remove_small_regions(filled, 10, "islands")
    assert changed and not cleaned[17:19, 17:19].any() and cleaned[2:12, 2:12].all()
    same, changed = remove_small_regions(cleaned, 10, "islands")
    assert not changed and (same == cleaned).all()


def test_generator_with_small_region_removal_runs(tiny_model, photo):
    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=3, pred_iou_thresh=0.0,
                               stability_score_thresh=0.0, min_mask_region_area=50)
    assert all(r["area"] > 0 for r in gen.generate(photo, 0.5))


def test_bad_arguments_are_clear_errors(tiny_model, photo):
    with pytest.raises(InputError, match="positive"):
        UnSAMv2MaskGenerator(tiny_model, points_per_side=0)
    with pytest.raises(InputError, match="granularity"):
        UnSAMv2MaskGenerator(tiny_model, points_per_side=2).generate(photo, 1.5)
