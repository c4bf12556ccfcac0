"""Our DINO backbones against the official DINOv2/DINOv3 code: ``x_norm_patchtokens`` of tiny random
models in the hub layout (``../shared/fixtures/official-dino-tiny``), within 1e-5 for every family —
DINOv2 with registers (antialiased exact-size position embedding), DINOv2 SwiGLU, DINOv3 S and 7B."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support.shared_fixtures import shared_fixture

from unsamv2.mining.dino import NORMALIZATIONS, load_dino_backbone

TOL = 1e-5
MODELS = ["dinov2_vits14_reg_tiny", "dinov2_vitg14_tiny", "dinov3_vits16_tiny", "dinov3_vit7b16_tiny"]


@pytest.fixture(scope="module")
def official():
    folder = shared_fixture("official-dino-tiny")
    spec = json.loads((folder / "spec.json").read_text())
    images = dict(np.load(folder / "images.npz"))
    images["wide16"] = np.ascontiguousarray(images["wide14"][:, :320])
    return folder, spec, images


@pytest.mark.parametrize("name", MODELS)
def test_patch_tokens_match_the_official_code(official, name):
    folder, spec, images = official
    model = spec["models"][name]
    backbone = load_dino_backbone(model["family"], str(folder / model["weights"]))
    expected = np.load(folder / model["expected"])
    mean, std = (torch.tensor(v)[:, None, None] for v in NORMALIZATIONS["imagenet"])
    for case, inp in model["inputs"].items():
        image, want = images[inp["image"]], expected[f"x_norm_patchtokens__{case}"]
        got = backbone.features(image, inp["long_side"])
        assert got.shape == want.shape and np.abs(got - want).max() <= TOL, (name, case)
        if not inp["resized"]:
            x = (torch.from_numpy(image).float().permute(2, 0, 1)[None] / 255.0 - mean) / std
            with torch.inference_mode():
                tokens = backbone.model.patch_tokens(x)[0].numpy()
            assert np.abs(tokens - want).max() <= TOL, (name, case)


def test_register_checkpoints_get_the_reg_interpolation_and_normalisation_is_a_property(official):
    folder, spec, _ = official
    reg = load_dino_backbone("dinov2", str(folder / "dinov2_vits14_reg_tiny.pth")).model.spec
    plain = load_dino_backbone("dinov2", str(folder / "dinov2_vitg14_tiny.pth")).model.spec
    assert (reg.interpolate_antialias, reg.interpolate_offset) == (True, 0.0)
    assert (plain.interpolate_antialias, plain.interpolate_offset) == (False, 0.1)
    sat = load_dino_backbone("dinov3", str(folder / "dinov3_vits16_tiny.pth"), normalization="sat493m")
    assert (sat.model.spec.mean, sat.model.spec.std) == NORMALIZATIONS["sat493m"]
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    default = load_dino_backbone("dinov3", str(folder / "dinov3_vits16_tiny.pth"))
    assert not np.allclose(default.features(img, 64), sat.features(img, 64))
