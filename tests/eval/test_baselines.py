"""The SAM-2 baseline adapter on a real (randomly initialised) SAM-2.1 Hiera-T."""

import numpy as np
import pytest

from unsamv2.eval.baselines import Sam2Baseline
from unsamv2.eval.policies import LoopSettings, Sam2BestOf3, Sam2Single
from unsamv2.eval.protocols import MultimaskPredictor


@pytest.mark.slow
def test_sam2_baseline_runs_both_policies_with_mask_feedback():
    torch = pytest.importorskip("torch")
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    torch.manual_seed(0)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")
    baseline = Sam2Baseline(SAM2ImagePredictor(model))
    assert isinstance(baseline, MultimaskPredictor)
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    baseline.set_image(image)
    masks, iou, low = baseline.predict_multimask(np.array([[10.0, 20.0]]), np.array([1]))
    assert masks.shape == (3, 48, 64) and masks.dtype == bool and iou.shape == (3,) and low.shape == (3, 256, 256)
    gt = np.zeros((48, 64), bool)
    gt[10:30, 5:40] = True
    settings = LoopSettings(max_clicks=3)
    for policy in (Sam2Single(), Sam2BestOf3()):
        run = policy.run(baseline, gt, None, settings)
        assert 1 <= len(run.ious) <= 3 and all(0.0 <= v <= 1.0 for v in run.ious)
        assert run.n_predictions == len(run.ious)


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
