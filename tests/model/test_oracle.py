"""The numerical oracle: outputs of the official UnSAMv2 code on a tiny checkpoint.

The fixture folder ``../shared/fixtures/official-unsamv2-tiny`` (next to the repository; the
``oracle_dir`` fixture of tests/model/conftest.py skips these tests, saying why, when it is absent)
holds a checkpoint in the official layout, an image, prompts and the official outputs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
TOL = 1e-4


@pytest.fixture(scope="module")
def oracle(oracle_dir):
    from PIL import Image

    from unsamv2.model import UnSAMv2Predictor, build_model

    model = build_model(str(oracle_dir / "sam2_tiny.yaml"), checkpoint=str(oracle_dir / "official_tiny.pt"))
    predictor = UnSAMv2Predictor(model, mask_threshold=-1.0)
    image = np.asarray(Image.open(oracle_dir / "image.png").convert("RGB"))
    predictor.set_image(image)
    prompts = json.loads((oracle_dir / "prompts.json").read_text())
    return predictor, image, prompts, np.load(oracle_dir / "expected.npz")


def test_checkpoint_is_recognised_as_official(oracle):
    predictor = oracle[0]
    info = predictor.model.unsamv2_build_info
    assert info["official_layout"] and info["checkpoint_has_adapter"]


@pytest.mark.parametrize("index", [0, 1])
def test_all_granularities_in_one_batch_match_the_official_outputs(oracle, index):
    from unsamv2.model.predictor import upscale_logits

    predictor, image, prompts, expected = oracle
    prompt, gs = prompts["prompts"][index], prompts["granularities"]
    masks, iou, low_res = predictor.predict(prompt["points"], prompt["labels"], gs)
    assert masks.shape == (len(gs), *image.shape[:2]) and masks.dtype == bool
    for j, g in enumerate(gs):
        want_low = expected[f"p{index}_g{g}_lowres"][0]
        assert np.abs(low_res[j] - want_low).max() < TOL
        assert np.abs(iou[j] - expected[f"p{index}_g{g}_iou"][0]) < TOL
        full = upscale_logits(torch.from_numpy(low_res[j])[None, None], image.shape[:2])[0, 0].numpy()
        assert np.abs(full - expected[f"p{index}_g{g}_logits"][0]).max() < TOL
        np.testing.assert_array_equal(masks[j], full > -1.0)


@pytest.mark.slow
def test_one_granularity_at_a_time_matches_too(oracle):
    predictor, _, prompts, expected = oracle
    prompt = prompts["prompts"][1]
    for g in prompts["granularities"]:
        _, iou, low_res = predictor.predict(prompt["points"], prompt["labels"], g)
        assert np.abs(low_res[0] - expected[f"p1_g{g}_lowres"][0]).max() < TOL
        assert np.abs(iou[0] - expected[f"p1_g{g}_iou"][0]) < TOL


@pytest.fixture(scope="module")
def reference(oracle):
    """The reference predictor's path: SAM-2's own SAM2ImagePredictor (which the official release
    only extends by passing g to the prompt encoder), on our modules, image set once."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    predictor, image = oracle[0], oracle[1]
    model = predictor.model
    ref = SAM2ImagePredictor(model, mask_threshold=-1.0)
    side = model.image_size // 4
    ref._bb_feat_sizes = [(side >> k, side >> k) for k in range(3)]  # as the release does
    ref.set_image(np.array(image))

    def run(points, labels, g, mask_input):
        with model.granularity_prompt(g):
            _, iou, low_res = ref.predict(np.asarray(points), np.asarray(labels),
                                          mask_input=mask_input, multimask_output=False)
        return iou, low_res

    return run


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.slow
def test_mask_prompt_fed_back_matches_the_reference_path(oracle, reference, index):
    predictor, image, prompts, expected = oracle
    prompt, gs = prompts["prompts"][index], prompts["granularities"]
    fed = np.stack([expected[f"p{index}_g{g}_lowres"][0] for g in gs])  # (G, 256, 256)
    _, iou, low_res = predictor.predict(prompt["points"], prompt["labels"], gs, mask_input=fed)
    for j, g in enumerate(gs):
        want_iou, want_low = reference(prompt["points"], prompt["labels"], g, fed[j:j + 1])
        assert np.abs(low_res[j] - want_low[0]).max() < TOL
        assert np.abs(iou[j] - want_iou[0]) < TOL
        # the mask prompt is really used: the output moved away from the no-mask output
        assert np.abs(low_res[j] - fed[j]).max() > 1e-3


def test_without_mask_the_reference_path_agrees_with_the_fixture(oracle, reference):
    """Sanity of the reference path used above: without a mask it reproduces the fixture."""
    prompts, expected = oracle[2], oracle[3]
    prompt = prompts["prompts"][0]
    iou, low_res = reference(prompt["points"], prompt["labels"], 0.35, None)
    assert np.abs(low_res[0] - expected["p0_g0.35_lowres"][0]).max() < TOL
    assert np.abs(iou[0] - expected["p0_g0.35_iou"][0]) < TOL


def test_our_state_dict_maps_back_to_exactly_the_official_keys(oracle, oracle_dir):
    from unsamv2.model.checkpoint import to_official

    official = torch.load(oracle_dir / "official_tiny.pt", map_location="cpu", weights_only=True)["model"]
    ours = to_official(oracle[0].model.state_dict())
    assert set(ours) == set(official)
    for key, value in official.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
