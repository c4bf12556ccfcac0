"""The whole-image generator's inference decoder and its batching: same outputs as the model's
own decoder (SAM-2's modules), as the official release, and as one call per g."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unsamv2.data.rle import decode_rle
from unsamv2.model import UnSAMv2MaskGenerator
from unsamv2.model.decoder import FastDecoder

ORACLE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "official-unsamv2-tiny"


def _fast(model, predictor):
    fast = FastDecoder(model.sam_prompt_encoder, model.sam_mask_decoder)
    features = predictor.features
    return fast, fast.context(features.image_embed, features.high_res)


def _prompts(size: int, seed: int = 0):
    """Four prompt sets: 2 clicks each (positive, negative, or -1 padding), g in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    coords = torch.rand((4, 2, 2), generator=gen) * size
    labels = torch.tensor([[1, 0], [1, 1], [1, -1], [0, 1]], dtype=torch.int32)
    return coords, labels, torch.tensor([0.0, 0.3, 0.65, 1.0])


@torch.inference_mode()
def test_fast_decoder_equals_the_models_decoder(fresh_tiny, randomize_adapter, photo):
    from unsamv2.model import UnSAMv2Predictor

    randomize_adapter(fresh_tiny, seed=3)  # LoRA B != 0: the folded LoRA weights matter
    predictor = UnSAMv2Predictor(fresh_tiny)
    predictor.set_image(photo)
    fast, ctx = _fast(fresh_tiny, predictor)
    coords, labels, g = _prompts(fresh_tiny.image_size)
    mask_input = None
    for _ in range(2):  # without, then with a mask prompt (the previous low-res logits)
        ref = fresh_tiny.decode(predictor.features, coords, labels, g, mask_input)
        ref_multi = fresh_tiny.decode(predictor.features, coords, labels, g, mask_input, multimask_iou=True)
        out = fast.decode(ctx, coords, labels, g, mask_input)
        low = fast.low_res_logits(ctx, out)
        scale = float(ref.low_res_logits.abs().max())
        assert float((low - ref.low_res_logits[:, 0]).abs().max()) < 1e-5 * max(scale, 1.0)
        torch.testing.assert_close(out.iou_all[:, 0:1], ref.iou_pred, rtol=0, atol=1e-5)
        torch.testing.assert_close(out.iou_all[:, 1:].amax(1, keepdim=True), ref_multi.iou_pred, rtol=0, atol=1e-5)
        torch.testing.assert_close(out.object_score_logits, ref.object_score_logits, rtol=0, atol=1e-4)
        rows = torch.tensor([False, True, False, True])
        torch.testing.assert_close(fast.low_res_logits(ctx, out, rows), low[rows], rtol=0, atol=0)
        mask_input = ref.low_res_logits.clamp(-32.0, 32.0)


@pytest.mark.skipif(not ORACLE.is_dir(), reason=f"oracle fixture folder {ORACLE} is absent")
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@torch.inference_mode()
def test_fast_decoder_reproduces_the_official_outputs():
    from PIL import Image

    from unsamv2.model import UnSAMv2Predictor, build_model

    model = build_model(str(ORACLE / "sam2_tiny.yaml"), checkpoint=str(ORACLE / "official_tiny.pt"))
    predictor = UnSAMv2Predictor(model)
    image = np.asarray(Image.open(ORACLE / "image.png").convert("RGB"))
    predictor.set_image(image)
    fast, ctx = _fast(model, predictor)
    prompts, expected = json.loads((ORACLE / "prompts.json").read_text()), np.load(ORACLE / "expected.npz")
    height, width = image.shape[:2]
    for index, prompt in enumerate(prompts["prompts"]):
        gs = prompts["granularities"]
        points = torch.tensor(prompt["points"], dtype=torch.float32) / torch.tensor([width, height]) * 1024
        labels = torch.tensor(prompt["labels"], dtype=torch.int32)
        out = fast.decode(ctx, points.expand(len(gs), -1, -1), labels.expand(len(gs), -1), torch.tensor(gs))
        low = fast.low_res_logits(ctx, out).numpy()
        for j, g in enumerate(gs):
            assert np.abs(low[j] - expected[f"p{index}_g{g}_lowres"][0]).max() < 1e-4
            assert abs(float(out.iou_all[j, 0]) - float(expected[f"p{index}_g{g}_iou"][0])) < 1e-4


def _masks(records, height, width):
    return [decode_rle(r["rle"], height, width) for r in records]


def test_all_granularities_in_one_pass_equal_one_call_per_g(tiny_model, photo):
    # 3x3 grid: decoder batches of 4 straddle the g boundaries when all g go together
    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                               box_nms_thresh=0.8, mask_threshold=0.0)
    gen.predictor.set_image(photo)
    gs = [0.2, 0.6, 0.9]
    together = gen.generate_for_set_image(gs)
    apart = [r for g in gs for r in gen.generate_for_set_image(g)]
    assert len(together) == len(apart) > 0
    height, width = photo.shape[:2]
    for a, b in zip(together, apart, strict=True):
        assert a["granularity"] == b["granularity"] and a["point_coords"] == b["point_coords"]
        assert a["predicted_iou"] == pytest.approx(b["predicted_iou"], abs=1e-6)
        assert a["stability_score"] == pytest.approx(b["stability_score"], abs=1e-6)
    for ma, mb in zip(_masks(together, height, width), _masks(apart, height, width), strict=True):
        assert (ma != mb).sum() <= 0.0001 * ma.size  # at most float-rounding flips at the threshold


def _reference(model, predictor, points, g, mask_threshold=0.0):
    """The official m2m generator's steps on the model's own decoder (SAM-2's modules), one g:
    second-pass IoU (P,), full-resolution logits (P, H, W) (unclamped) and stability (P,)."""
    from sam2.utils.amg import calculate_stability_score

    from unsamv2.model.predictor import upscale_logits

    height, width = predictor.image_size_hw
    coords = torch.as_tensor(points, dtype=torch.float32)[:, None] / torch.tensor([width, height]) * model.image_size
    labels = torch.ones((len(points), 1), dtype=torch.int32)
    gs = torch.full((len(points),), g)
    with torch.inference_mode():
        first = model.decode(predictor.features, coords, labels, gs)
        second = model.decode(predictor.features, coords, labels, gs, first.low_res_logits.clamp(-32.0, 32.0))
    logits = upscale_logits(second.low_res_logits, (height, width))[:, 0]
    return second.iou_pred[:, 0], logits, calculate_stability_score(logits, mask_threshold, 0.7)


def test_filters_act_on_the_second_pass_like_the_official_generator(tiny_model, photo, monkeypatch):
    from unsamv2.model.decoder import FastDecoder

    height, width = photo.shape[:2]
    probe = UnSAMv2MaskGenerator(tiny_model, points_per_side=4, mask_threshold=0.0)  # shared predictor: its threshold
    probe.predictor.set_image(photo)
    points = probe.point_grid * np.array([width, height])
    upscaled, original = [], FastDecoder.low_res_logits
    monkeypatch.setattr(FastDecoder, "low_res_logits",
                        lambda self, ctx, out, rows=None: upscaled.append(rows) or original(self, ctx, out, rows))
    for g in (0.3, 0.8):
        iou, logits, stability = _reference(tiny_model, probe.predictor, points, g)
        thresh, stable = float(iou.median()), float(stability.median())  # some clicks pass, some fail
        gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=4, pred_iou_thresh=thresh, stability_score_thresh=stable,
                                   box_nms_thresh=1.0, mask_threshold=0.0, predictor=probe.predictor)
        upscaled.clear()
        got = gen.generate_for_set_image(g)
        want = torch.nonzero((iou > thresh) & (stability >= stable) & (logits > 0).flatten(1).any(1))[:, 0].tolist()
        assert 0 < len(want) < len(points)
        # first pass: every click upscaled (its logits are the m2m prompt); second: only IoU passes
        assert int(torch.cat([rows for rows in upscaled if rows is not None]).sum()) == int((iou > thresh).sum())
        clicks = [int(np.argmin(np.abs(points - np.array(r["point_coords"][0])).sum(1))) for r in got]
        assert sorted(clicks) == want
        for r, i in zip(got, clicks, strict=True):
            assert r["predicted_iou"] == pytest.approx(float(iou[i]), abs=1e-5)
            assert r["stability_score"] == pytest.approx(float(stability[i]), abs=1e-3)
            assert (decode_rle(r["rle"], height, width) != (logits[i] > 0).numpy()).sum() <= 0.0001 * height * width


def test_decoder_weights_changed_after_set_image_are_used(fresh_tiny, photo):
    gen = UnSAMv2MaskGenerator(fresh_tiny, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                               box_nms_thresh=1.0, mask_threshold=0.0)
    gen.predictor.set_image(photo)
    before = gen.generate_for_set_image(0.5)
    with torch.no_grad():
        fresh_tiny.sam_mask_decoder.granularity_mlp.layers[2].bias.add_(0.5)
    after = gen.generate_for_set_image(0.5)
    fresh = UnSAMv2MaskGenerator(fresh_tiny, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                 box_nms_thresh=1.0, mask_threshold=0.0).generate(photo, 0.5)
    assert [r["rle"] for r in after] != [r["rle"] for r in before]
    assert [r["rle"] for r in after] == [r["rle"] for r in fresh]


def test_hundreds_of_masks_per_g_keep_their_areas_and_boxes(tiny_model, photo):
    gen = UnSAMv2MaskGenerator(tiny_model, points_per_side=17, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                               box_nms_thresh=1.0, mask_threshold=0.0, use_m2m=False)
    records = gen.generate(photo, 0.5)
    assert len(records) > 256  # pycocotools' area() overflows from 256 RLEs on: not used here
    height, width = photo.shape[:2]
    for r in records[::37]:
        mask = decode_rle(r["rle"], height, width)
        ys, xs = np.nonzero(mask)
        assert r["area"] == int(mask.sum())
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_training_mode_is_refused(fresh_tiny, photo):
    from unsamv2.errors import InputError

    fresh_tiny.train()
    with pytest.raises(InputError, match="eval"):
        UnSAMv2MaskGenerator(fresh_tiny, points_per_side=2).generate(photo, 0.5)
