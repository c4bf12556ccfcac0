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
