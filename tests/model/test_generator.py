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


@pytest.mark.slow
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


def _small_regions(mask: np.ndarray, min_area: int) -> tuple[int, int, int]:
    """(islands, small islands, small holes) of an (H, W) bool mask, 8-connected."""
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    islands, n = ndimage.label(mask, structure=eight)
    holes, m = ndimage.label(~mask, structure=eight)
    island_sizes, hole_sizes = np.bincount(islands.ravel())[1:], np.bincount(holes.ravel())[1:]
    return n, int((island_sizes < min_area).sum()), int((hole_sizes < min_area).sum())


def test_small_region_removal_leaves_no_small_island_or_hole(tiny_model, photo, records):
    """min_mask_region_area = 50: the random tiny model's masks are full of specks (the same
    settings without it, ``records``, have islands and holes under 50 px); with it, no mask keeps a
    hole under 50 px, nor an island under 50 px unless it is the mask's only one (SAM-2's rule)."""
    height, width = photo.shape[:2]
    plain = [_small_regions(decode_rle(r["rle"], height, width), 50) for r in records]
    assert any(small_islands or small_holes for _, small_islands, small_holes in plain)
    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=4, points_per_batch=16, pred_iou_thresh=0.0,
                               stability_score_thresh=0.0, mask_threshold=0.0, min_mask_region_area=50)
    found = gen.generate(photo, 0.2)
    assert found, "the generator kept no mask"
    for r in found:
        mask = decode_rle(r["rle"], height, width)
        assert r["area"] == mask.sum() > 0
        islands, small_islands, small_holes = _small_regions(mask, 50)
        assert small_holes == 0 and (small_islands == 0 or islands == 1)


def test_bad_arguments_are_clear_errors(tiny_model, photo):
    with pytest.raises(InputError, match="positive"):
        UnSAMv2MaskGenerator(tiny_model, points_per_side=0)
    with pytest.raises(InputError, match="granularity"):
        UnSAMv2MaskGenerator(tiny_model, points_per_side=2).generate(photo, 1.5)


def _spy_decode(monkeypatch) -> list[dict]:
    """Record every call of the generator's decoder (``FastDecoder.decode``): prompts and outputs."""
    from unsamv2.model.decoder import FastDecoder

    calls = []
    original = FastDecoder.decode

    def spy(self, ctx, point_coords, point_labels, granularity, mask_input=None):
        out = original(self, ctx, point_coords, point_labels, granularity, mask_input)
        calls.append({"coords": point_coords.clone(), "labels": point_labels.clone(), "g": granularity.clone(),
                      "mask_input": None if mask_input is None else mask_input.clone(),
                      "low_res": self.low_res_logits(ctx, out), "iou": out.iou_all.clone()})
        return out

    monkeypatch.setattr(FastDecoder, "decode", spy)
    return calls


def test_m2m_second_pass_is_prompted_with_each_points_own_first_pass_logits(tiny_model, photo, monkeypatch):
    import torch

    from unsamv2.model.predictor import upscale_logits

    # 3x3 grid in batches of 4: (first, second) decoder calls for 4, 4 and 1 clicks; filters off
    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=3, points_per_batch=4, pred_iou_thresh=-1.0,
                               stability_score_thresh=0.0, box_nms_thresh=1.0, multimask_iou=True)
    gen.predictor.set_image(photo)
    features = gen.predictor.features
    calls = _spy_decode(monkeypatch)
    records = gen.generate_for_set_image(0.3)
    assert [len(c["coords"]) for c in calls] == [4, 4, 4, 4, 1, 1]
    second_low, second_iou = [], []
    for first, second in zip(calls[0::2], calls[1::2], strict=True):
        assert first["mask_input"] is None
        assert torch.equal(second["coords"], first["coords"]) and torch.equal(second["g"], first["g"])
        # row i of the second call's mask prompt is row i (the same click) of the first call's
        # low-res logits, clamped to [-32, 32] as SAM-2's predictor returns them
        assert torch.equal(second["mask_input"][:, 0], first["low_res"].clamp(-32.0, 32.0))
        # ... and both passes are the model's own decoder (SAM-2's path), up to float rounding
        with torch.inference_mode():
            ref1 = tiny_model.decode(features, first["coords"], first["labels"], first["g"])
            ref2 = tiny_model.decode(features, first["coords"], first["labels"], first["g"],
                                     ref1.low_res_logits.clamp(-32.0, 32.0))
        assert torch.allclose(first["low_res"], ref1.low_res_logits[:, 0], atol=1e-4)
        assert torch.allclose(second["low_res"], ref2.low_res_logits[:, 0], atol=1e-4)
        # refine_with_m2m decodes with multimask_output=False: the single-mask IoU slot
        assert torch.allclose(second["iou"][:, 0:1], ref2.iou_pred, atol=1e-5)
        second_low.append(second["low_res"])
        second_iou.append(second["iou"][:, 0])
    # every record comes from the second pass: its score, its mask (unclamped logits) and its click
    lows, ious = torch.cat(second_low), torch.cat(second_iou).numpy()
    height, width = photo.shape[:2]
    clicks = gen.point_grid * np.array([width, height])
    assert len(records) > 0
    for r in records:
        i = int(np.argmin(np.abs(clicks - np.array(r["point_coords"][0])).sum(1)))
        assert r["predicted_iou"] == pytest.approx(float(ious[i]), abs=1e-6)
        mask = (upscale_logits(lows[i:i + 1, None], (height, width))[0, 0] > gen.mask_threshold).numpy()
        assert (decode_rle(r["rle"], height, width) == mask).all()


def test_m2m_off_decodes_once_without_a_mask_prompt(tiny_model, photo, monkeypatch):
    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=3, points_per_batch=4, use_m2m=False)
    gen.predictor.set_image(photo)
    calls = _spy_decode(monkeypatch)
    gen.generate_for_set_image(0.7)
    assert [len(c["coords"]) for c in calls] == [4, 4, 1]  # points_per_batch prompts per decoder call
    assert all(c["mask_input"] is None for c in calls)


def test_cpu_decoder_batch_keeps_per_call_tensors_below_the_mmap_threshold(tiny_model, photo, monkeypatch):
    from unsamv2.model.decoder import CPU_CHUNK_ELEMENTS, rows_per_chunk

    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=3, points_per_batch=128)
    gen.predictor.set_image(photo)  # 300 x 420 photo: its 126,000 pixels per prompt bound the batch
    assert gen.decoder_batch() == 2 * CPU_CHUNK_ELEMENTS // (300 * 420) == 33
    calls = _spy_decode(monkeypatch)
    gen.generate_for_set_image([0.2, 0.4, 0.6, 0.8, 1.0, 0.3, 0.5])  # 63 clicks
    assert [len(c["coords"]) for c in calls] == [33, 33, 30, 30]
    # SAM-2.1 shapes (64 x 64 tokens of 256 channels, a 1024-px image): 4 prompts per call; the
    # shipped base (8 x 8 x 128) on a 256-px image: 64; one row of the upscaling at SAM-2.1 shapes
    assert rows_per_chunk(64 * 64 * 256, 2 * CPU_CHUNK_ELEMENTS) == 4
    assert rows_per_chunk(max(8 * 8 * 128, 256 * 256), 2 * CPU_CHUNK_ELEMENTS) == 64
    assert rows_per_chunk(16 * 64 * 64 * 32) == 1 and rows_per_chunk(16 * 8 * 8 * 16) == 128


def test_settings_report_every_option_and_rebuild_the_generator(tiny_model):
    from dataclasses import asdict

    from unsamv2.eval.whole_image import WholeImageSettings

    official = UnSAMv2MaskGenerator(tiny_model)
    assert WholeImageSettings.of(official) == WholeImageSettings()  # the defaults are the official protocol
    chosen = WholeImageSettings(points_per_side=5, points_per_batch=7, use_m2m=False, pred_iou_thresh=0.3,
                                box_nms_thresh=0.5, min_mask_region_area=10)
    rebuilt = UnSAMv2MaskGenerator.from_settings(tiny_model, asdict(chosen))
    assert WholeImageSettings.of(rebuilt) == chosen and len(rebuilt.point_grid) == 25
    with pytest.raises(InputError, match="crop"):
        UnSAMv2MaskGenerator.from_settings(tiny_model, {"crop_n_layers": 1})


def test_mask_areas_and_boxes_equal_sam2s_boxes_and_the_pixel_counts():
    import torch
    from sam2.utils.amg import batched_mask_to_box

    from unsamv2.model.generator import mask_areas_and_boxes

    gen = torch.Generator().manual_seed(0)
    masks = torch.rand((40, 37, 53), generator=gen) > torch.rand((40, 1, 1), generator=gen)
    masks[0] = False
    masks[1] = True
    masks[2] = False
    masks[2, 0, 52] = True  # one pixel in the top-right corner
    masks[3] = False
    masks[3, 36, 0] = True  # ... and in the bottom-left one
    masks[4] = False
    masks[4, 10:12, 20:30] = True
    areas, boxes = mask_areas_and_boxes(masks)
    assert torch.equal(areas.long(), masks.flatten(1).sum(1))
    nonempty = areas > 0
    assert torch.equal(boxes[nonempty], batched_mask_to_box(masks)[nonempty])
    assert boxes[4].tolist() == [20, 10, 29, 11] and boxes[2].tolist() == [52, 0, 52, 0]
    assert mask_areas_and_boxes(masks[:0])[1].shape == (0, 4)
