"""DINOv2 / DINOv3 loading: tiny random ViTs of the real architectures, saved then loaded
strictly from a local path, an s3:// URI (moto), a wrapped training checkpoint and safetensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unsamv2.errors import InputError, UnSAMv2Error
from unsamv2.mining.dino import NAMED_ARCHS, DinoBackbone, build_vit, infer_spec, load_dino_backbone
from unsamv2.mining.features import grid_shape
from unsamv2.mining.vit import DinoViT, ViTSpec

TINY = {
    "dinov2": ViTSpec("dinov2", 128, 2, 2, 14, "swiglu", 88, registers=4, pos_grid=4,
                      interpolate_antialias=True, interpolate_offset=0.0),  # as the hub *_reg models
    "dinov3": ViTSpec("dinov3", 32, 2, 4, 16, "mlp", 64, registers=4, pos_grid=0,
                      mask_k_bias=True, norm_eps=1e-5),
}


def tiny_model(family: str, seed: int = 0) -> DinoViT:
    torch.manual_seed(seed)
    model = DinoViT(TINY[family]).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    return model


def image(h=70, w=90, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("family", ["dinov2", "dinov3"])
def test_saved_tiny_vit_loads_strictly_and_gives_the_same_features(tmp_path, family):
    model = tiny_model(family)
    path = str(tmp_path / "w.pth")
    torch.save(model.state_dict(), path)
    loaded = load_dino_backbone(family, path)
    assert loaded.model.spec == TINY[family]
    feats = loaded.features(image(), 96)
    p = TINY[family].patch_size
    assert feats.shape == (*grid_shape(70, 90, 96, p), TINY[family].embed_dim)
    want = DinoBackbone(model).features(image(), 96)
    np.testing.assert_array_equal(feats, want)


@pytest.mark.integration
def test_loads_from_s3_and_wrapped_checkpoints(tmp_path, s3_bucket):
    from safetensors.torch import save_file

    from unsamv2.data import storage

    model = tiny_model("dinov3")
    sd = model.state_dict()
    local = tmp_path / "teacher.pth"
    torch.save({"teacher": {f"backbone.{k}": v for k, v in sd.items()}, "iteration": 3}, local)
    uri = f"{s3_bucket}/weights/teacher.pth"
    storage.write_bytes(uri, local.read_bytes())
    safet = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(safet))
    want = DinoBackbone(model).features(image(), 64)
    for where in (uri, str(safet)):
        np.testing.assert_array_equal(load_dino_backbone("dinov3", where).features(image(), 64), want)


def test_wrong_family_named_arch_and_garbage_are_clear_errors(tmp_path):
    path = tmp_path / "v2.pth"
    torch.save(tiny_model("dinov2").state_dict(), path)
    with pytest.raises(InputError, match="set backbone='dinov2'"):
        load_dino_backbone("dinov3", str(path))
    with pytest.raises(InputError, match="does not match the dinov2 vitb14"):
        load_dino_backbone("dinov2", str(path), arch="vitb14")
    with pytest.raises(InputError, match="unknown dinov2 architecture"):
        load_dino_backbone("dinov2", str(path), arch="vitx")
    with pytest.raises(InputError, match="patch_size=16"):
        load_dino_backbone("dinov2", str(path), patch_size=16)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable"):
        load_dino_backbone("dinov2", str(junk))
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(InputError, match="not a DINOv2/DINOv3"):
        load_dino_backbone("dinov2", str(other))
    with pytest.raises(UnSAMv2Error, match="does not exist"):
        load_dino_backbone("dinov2", str(tmp_path / "missing.pth"))


def test_named_architectures_match_released_shapes():
    v3b = NAMED_ARCHS["dinov3"]["vitb16"]
    assert (v3b.embed_dim, v3b.depth, v3b.num_heads, v3b.registers) == (768, 12, 12, 4)
    assert NAMED_ARCHS["dinov2"]["vitg14"].ffn_hidden == 4096  # fused SwiGLU width of ViT-g
    assert NAMED_ARCHS["dinov3"]["vith16plus"].ffn_hidden == 5120
    sd = DinoViT(NAMED_ARCHS["dinov3"]["vits16"]).state_dict()
    assert infer_spec(sd, "dinov3") == NAMED_ARCHS["dinov3"]["vits16"]
    assert build_vit(sd, "dinov3", "vits16").spec.embed_dim == 384
    assert "blocks.11.attn.qkv.bias_mask" in sd and "rope_embed.periods" in sd
