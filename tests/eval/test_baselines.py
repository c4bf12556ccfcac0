"""The SAM-2 baseline adapter on a real (randomly initialised) SAM-2.1 Hiera-T."""

import numpy as np
import pytest

from unsamv2.eval.baselines import Sam2Baseline
from unsamv2.eval.policies import LoopSettings, Sam2BestOf3, Sam2Single
from unsamv2.eval.protocols import MultimaskPredictor


class _Spy:
    """A ``MultimaskPredictor`` that records every call: (kind, points, labels, mask_input, output)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def set_image(self, image):
        self.inner.set_image(image)

    def predict_single(self, point_coords, point_labels, mask_input=None):
        return self._record("single", point_coords, point_labels, mask_input)

    def predict_multimask(self, point_coords, point_labels, mask_input=None):
        return self._record("multimask", point_coords, point_labels, mask_input)

    def _record(self, kind, points, labels, mask_input):
        out = getattr(self.inner, f"predict_{kind}")(points, labels, mask_input=mask_input)
        self.calls.append((kind, np.array(points), np.array(labels), None if mask_input is None else np.array(mask_input),
                           out))
        return out


@pytest.mark.integration  # a SAM-2.1 Hiera-T build and 1024-px forwards on the CPU
@pytest.mark.slow
def test_sam2_baselines_on_a_real_sam2_threshold_pick_and_feed_back_as_the_protocol_says():
    """On a real (randomly initialised) SAM-2.1 Hiera-T: the masks are SAM-2's logits above -1
    (single) / 0 (best of 3); every click is the simulated user's click on the mask the policy kept
    (the single mask, or the best of 3 against the ground truth); the kept mask's low-res logits are
    the next call's mask prompt; the recorded IoUs are those of the kept masks."""
    import torch
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from unsamv2.eval.interactive import ClickSession, mask_iou

    torch.manual_seed(0)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")
    sam2 = SAM2ImagePredictor(model)
    baseline = Sam2Baseline(sam2)
    assert isinstance(baseline, MultimaskPredictor)
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    image[10:30, 5:40] = (200, 60, 40)
    baseline.set_image(image)

    point, label = np.array([[10.0, 20.0]]), np.array([1])
    masks, iou, low = baseline.predict_multimask(point, label)
    assert masks.shape == (3, 48, 64) and masks.dtype == bool and iou.shape == (3,) and low.shape == (3, 256, 256)
    logits, _, _ = sam2.predict(point_coords=point.astype(np.float32), point_labels=label.astype(np.int32),
                                multimask_output=True, return_logits=True)
    assert (masks == (logits > 0.0)).all()
    single, _, _ = baseline.predict_single(point, label)
    logits, _, _ = sam2.predict(point_coords=point.astype(np.float32), point_labels=label.astype(np.int32),
                                multimask_output=False, return_logits=True)
    assert (single == (logits > -1.0)).all()

    gt = np.zeros((48, 64), bool)
    gt[10:30, 5:40] = True
    settings = LoopSettings(max_clicks=3, target_iou=1.0)  # a random SAM-2 never reaches IoU 1: 3 clicks
    for policy, kind in ((Sam2Single(), "single"), (Sam2BestOf3(), "multimask")):
        spy = _Spy(baseline)
        run = policy.run(spy, gt, None, settings)
        assert len(spy.calls) == len(run.ious) == run.n_predictions == 3
        user = ClickSession(gt)
        kept_mask, prompt = None, None
        for k, (called, points, labels, mask_input, (masks, _, low)) in enumerate(spy.calls):
            assert called == kind
            want_points, want_labels = user.click(kept_mask)  # the simulated user, replayed
            np.testing.assert_array_equal(points, want_points)
            np.testing.assert_array_equal(labels, want_labels)
            if k == 0:
                assert mask_input is None and labels.tolist() == [1]  # first click: positive, inside
                assert gt[int(points[0, 1]), int(points[0, 0])]
            else:
                np.testing.assert_array_equal(mask_input, prompt)
            ious = [mask_iou(gt, m) for m in masks]
            kept = 0 if kind == "single" else int(np.argmax(ious))
            assert run.ious[k] == (ious[0] if kind == "single" else max(ious))
            kept_mask, prompt = masks[kept], low[kept : kept + 1]
            user.record(kept_mask)
        np.testing.assert_array_equal(run.points, want_points)
        np.testing.assert_array_equal(run.labels, want_labels)


class _LogitsPredictor:
    """Stands in for ``SAM2ImagePredictor``: logits -1.5, -0.5, 0.5 in three columns."""

    def predict(self, point_coords, point_labels, mask_input=None, multimask_output=True, return_logits=False):
        assert return_logits
        logits = np.tile(np.array([-1.5, -0.5, 0.5], np.float32), (2, 1))
        count = 3 if multimask_output else 1
        return np.stack([logits] * count), np.full(count, 0.5), np.zeros((count, 256, 256), np.float32)


def test_single_mask_binarises_at_minus_one_and_best_of_3_at_zero():
    # the official scripts: SAM-2 single mask `pred_probs > -1`, best-of-3 `pred_probs > 0`
    baseline = Sam2Baseline(_LogitsPredictor())
    single, _, _ = baseline.predict_single(np.array([[1.0, 1.0]]), np.array([1]))
    three, _, _ = baseline.predict_multimask(np.array([[1.0, 1.0]]), np.array([1]))
    assert single[0, 0].tolist() == [False, True, True]
    assert all(m[0].tolist() == [False, False, True] for m in three)
    assert (baseline.single_threshold, baseline.multimask_threshold) == (-1.0, 0.0)
