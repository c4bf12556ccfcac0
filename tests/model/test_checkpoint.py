"""Checkpoint layouts and strict loading: official UnSAMv2, plain SAM-2 + adapter file, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unsamv2.errors import InputError, UnSAMv2Error
from unsamv2.model import UnSAMv2Predictor, build_model, save_adapter
from unsamv2.model.checkpoint import (
    from_official,
    is_adapter_key,
    is_official_layout,
    to_official,
)

POINTS, LABELS, GS = [[200.0, 150.0], [60.0, 40.0]], [1, 0], [0.1, 0.6, 1.0]


def outputs(model, image):
    predictor = UnSAMv2Predictor(model)
    predictor.set_image(image)
    return predictor.predict(POINTS, LABELS, GS)


@pytest.fixture(scope="module")
def trained(photo, randomize_adapter):
    """A tiny model whose adapter (incl. LoRA B) is non-zero, and its outputs on the photo."""
    model = build_model("tiny")
    randomize_adapter(model, seed=3)
    return model, outputs(model, photo)


def save(state, path):
    torch.save({"model": state}, path)
    return str(path)


def assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


def test_official_layout_checkpoint_loads_strictly_and_reproduces_outputs(trained, photo, tmp_path):
    model, expected = trained
    official = to_official(model.state_dict())
    assert is_official_layout(official)
    assert "sam_mask_decoder.gra_token.weight" in official
    assert "sam_prompt_encoder.fourier_embedder.mlp.mlp.6.bias" in official
    assert "sam_mask_decoder.transformer.layers.1.self_attn.q_proj.original_layer.weight" in official
    assert sum(k.endswith(".original_layer.weight") for k in official) == 28
    assert from_official(official).keys() == model.state_dict().keys()
    loaded = build_model("tiny", checkpoint=save(official, tmp_path / "official.pt"))
    assert loaded.unsamv2_build_info["official_layout"]
    assert_same(outputs(loaded, photo), expected)


def test_sam2_only_checkpoint_plus_adapter_file_loads(trained, photo, tmp_path):
    model, expected = trained
    sam2_only = {k: v for k, v in model.state_dict().items() if not is_adapter_key(k)}
    ckpt = save(sam2_only, tmp_path / "sam2.pt")
    adapter = str(tmp_path / "adapter.safetensors")
    save_adapter(adapter, model, {"data_version": "test"})
    loaded = build_model("tiny", checkpoint=ckpt, adapter=adapter)
    assert not loaded.unsamv2_build_info["checkpoint_has_adapter"]
    assert_same(outputs(loaded, photo), expected)
    # without the adapter the untrained adapter (LoRA B = 0) gives different outputs
    plain = build_model("tiny", checkpoint=ckpt, seed=123)
    assert np.abs(outputs(plain, photo)[2] - expected[2]).max() > 1e-3


@pytest.mark.slow
def test_sam2_only_checkpoint_matches_sam2s_own_model(tmp_path):
    """Our model's SAM-2 keys are exactly SAM-2's: a checkpoint of sam2's plain model loads."""
    from unsamv2.model import build_sam2

    base = build_sam2("tiny")
    ckpt = save(base.state_dict(), tmp_path / "plain.pt")
    model = build_model("tiny", checkpoint=ckpt)
    for key, value in base.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
    again = build_sam2("tiny", checkpoint=ckpt)  # and the baseline builder reads it back
    assert again.state_dict().keys() == base.state_dict().keys()


def test_missing_keys_fail_with_their_names(trained, tmp_path):
    state = dict(trained[0].state_dict())
    del state["sam_mask_decoder.iou_token.weight"]
    with pytest.raises(InputError, match="lacks keys.*sam_mask_decoder.iou_token.weight"):
        build_model("tiny", checkpoint=save(state, tmp_path / "missing.pt"))


def test_partial_adapter_fails_with_its_names(trained, tmp_path):
    state = dict(trained[0].state_dict())
    del state["sam_mask_decoder.granularity_token.weight"]
    with pytest.raises(InputError, match="lacks adapter keys.*granularity_token.weight"):
        build_model("tiny", checkpoint=save(state, tmp_path / "partial.pt"))


def test_unexpected_keys_fail_with_their_names(trained, tmp_path):
    state = dict(trained[0].state_dict())
    state["sam_mask_decoder.extra_head.weight"] = torch.zeros(3)
    with pytest.raises(InputError, match="does not have.*extra_head.weight"):
        build_model("tiny", checkpoint=save(state, tmp_path / "extra.pt"))


def test_wrong_shapes_fail_with_their_names(trained, tmp_path):
    state = dict(trained[0].state_dict())
    state["sam_mask_decoder.granularity_token.weight"] = torch.zeros(1, 128)
    with pytest.raises(InputError, match="wrong shape.*granularity_token.weight"):
        build_model("tiny", checkpoint=save(state, tmp_path / "shape.pt"))


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    with pytest.raises(InputError, match="not a loadable PyTorch checkpoint"):
        build_model("tiny", checkpoint=str(bad))
    with pytest.raises(UnSAMv2Error, match="absent.pt does not exist"):
        build_model("tiny", checkpoint=str(tmp_path / "absent.pt"))


@pytest.mark.integration
def test_checkpoint_and_adapter_load_from_s3(trained, photo, s3_bucket, tmp_path):
    from unsamv2.data import storage

    model, expected = trained
    local = save(to_official(model.state_dict()), tmp_path / "official.pt")
    storage.write_bytes(f"{s3_bucket}/ckpt/official.pt", open(local, "rb").read())
    save_adapter(f"{s3_bucket}/ckpt/adapter.safetensors", model)
    loaded = build_model("tiny", checkpoint=f"{s3_bucket}/ckpt/official.pt",
                         adapter=f"{s3_bucket}/ckpt/adapter.safetensors")
    assert_same(outputs(loaded, photo), expected)


def test_unknown_config_and_device_are_clear_errors():
    with pytest.raises(InputError, match="unknown model config"):
        build_model("sam3_hiera_xl")
    with pytest.raises(InputError, match="does not exist"):
        build_model("/nonexistent/config.yaml")
    with pytest.raises(InputError, match="device"):
        build_model("tiny", device="tpu")


def test_non_default_image_size_builds_and_predicts(photo):
    model = build_model("tiny", image_size=512)
    assert model.image_size == 512 and model.low_res_size == 128
    predictor = UnSAMv2Predictor(model)
    predictor.set_image(photo)
    masks, iou, low = predictor.predict(POINTS, LABELS, 0.5)
    assert masks.shape == (1, *photo.shape[:2]) and low.shape == (1, 128, 128) and iou.shape == (1,)


def test_yaml_path_with_the_official_extra_keys_builds(tmp_path):
    """The release's configs add ``lora_rank``, ``fourier_dim`` and ``temperature`` to SAM-2's."""
    from importlib import resources

    text = resources.files("unsamv2").joinpath("configs", "tiny.yaml").read_text()
    text = text.replace("  num_maskmem: 7\n", "  num_maskmem: 7\n  lora_rank: 4\n  fourier_dim: 128\n"
                        "  temperature: 100\n  multimask_output_in_sam: true\n", 1)
    text = text.replace("  multimask_output_in_sam: false\n", "", 1)
    path = tmp_path / "release_style.yaml"
    path.write_text(text)
    model = build_model(str(path))
    assert model.sam_mask_decoder.transformer.layers[0].self_attn.q_proj.rank == 4
    assert model.multimask_output_in_sam is False  # UnSAMv2's inference flags always apply
    with pytest.raises(InputError, match="no 'model:' section"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("trainer: {}\n")
        build_model(str(bad))


@pytest.mark.parametrize("target", ["builtins.open", "os.system", "subprocess.Popen", "sam2.build_sam.build_sam2",
                                    "torch.load", "${oc.env:HOME}"])
def test_config_that_names_code_is_refused_before_anything_runs(tmp_path, target):
    """A config is data: a _target_ that is not a model class is refused with one sentence and
    nothing is instantiated (the file the payload would create never appears)."""
    import yaml

    from unsamv2.errors import InputError
    from unsamv2.model import build_model, build_sam2
    from unsamv2.model.build import _config_text

    victim = tmp_path / "pwned"
    cfg = yaml.safe_load(_config_text("tiny"))
    cfg["model"]["memory_encoder"]["fuser"]["payload"] = {"_target_": target, "file": str(victim), "mode": "w"}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(cfg))
    for build in (build_model, build_sam2):
        with pytest.raises(InputError, match="not a model class"):
            build(str(path))
    assert not victim.exists()
