"""LoRA, trainable parameters, counts, adapter files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unsamv2.errors import InputError
from unsamv2.model import (
    UnSAMv2Predictor,
    adapter_parameters,
    adapter_state_dict,
    build_model,
    count_parameters,
    load_adapter,
    read_adapter,
    save_adapter,
    set_trainable,
    trainable_parameters,
)
from unsamv2.model.lora import LoRALinear, attention_modules


def test_lora_linear_formula_and_initialisation():
    torch.manual_seed(0)
    base = torch.nn.Linear(32, 16)
    lora = LoRALinear.from_linear(base, rank=8, alpha=16, dropout=0.1)
    assert lora.weight is base.weight and lora.bias is base.bias
    assert torch.count_nonzero(lora.lora_B) == 0
    assert lora.lora_A.shape == (8, 32) and lora.lora_B.shape == (16, 8)
    assert 0.005 < float(lora.lora_A.detach().std()) < 0.015  # N(0, 0.01^2)
    x = torch.randn(5, 32)
    lora.eval()
    torch.testing.assert_close(lora(x), base(x))  # B = 0: exactly the frozen layer
    with torch.no_grad():
        lora.lora_B.normal_()
    torch.testing.assert_close(lora(x), base(x) + (x @ lora.lora_A.T @ lora.lora_B.T) * 2.0)
    lora.train()  # dropout only on the low-rank path
    assert not torch.allclose(lora(x), lora(x))


def test_lora_wraps_qkv_out_of_all_seven_attention_modules(tiny_model):
    transformer = tiny_model.sam_mask_decoder.transformer
    modules = attention_modules(transformer)
    assert len(modules) == 7
    wrapped = [m for _, att in modules for m in (att.q_proj, att.k_proj, att.v_proj, att.out_proj)]
    assert len(wrapped) == 28 and all(isinstance(m, LoRALinear) for m in wrapped)
    assert {m.rank for m in wrapped} == {8} and {m.scaling for m in wrapped} == {2.0}
    assert sum(m.lora_A.numel() + m.lora_B.numel() for m in wrapped) == 94_208
    # LoRA only there: nothing else in the model is a LoRA layer
    assert sum(isinstance(m, LoRALinear) for m in tiny_model.modules()) == 28


def test_trainable_additions_for_hiera_s_are_345760():
    model = build_model("sam2.1_hiera_s")  # random weights: no checkpoint needed
    counts = count_parameters(model)
    assert counts["trainable"] == counts["adapter"] == 345_760
    assert counts["granularity embedding"] == 256
    assert counts["granularity MLP"] == 111_232
    assert counts["granularity token"] == 256
    assert counts["granularity token MLP"] == 139_808
    assert counts["LoRA"] == 94_208
    assert counts["total"] - counts["adapter"] == 46_060_354  # SAM-2.1 Hiera-S itself


def test_set_trainable_modes(fresh_tiny):
    model = fresh_tiny
    assert set(trainable_parameters(model)) == set(adapter_parameters(model))
    set_trainable(model, "full")
    assert len(trainable_parameters(model)) == len(list(model.parameters()))
    set_trainable(model, "adapter")
    assert all(n in adapter_parameters(model) for n in trainable_parameters(model))
    with pytest.raises(InputError, match="adapter' or 'full"):
        set_trainable(model, "lora")


@pytest.mark.slow
def test_adapter_file_round_trip_with_metadata(fresh_tiny, randomize_adapter, photo, tmp_path):
    model = fresh_tiny
    randomize_adapter(model, seed=7)
    path = str(tmp_path / "a.safetensors")
    save_adapter(path, model, {"data_version": "scenes-v1", "metrics": {"noc90": 3.1}})
    tensors, meta = read_adapter(path)
    assert set(tensors) == set(adapter_state_dict(model))
    assert meta["format"] == "unsamv2-adapter" and meta["base_config"] == "tiny"
    assert meta["unsamv2_version"] and meta["lora_rank"] == "8" and meta["lora_alpha"] == "16.0"
    assert meta["data_version"] == "scenes-v1" and '"noc90": 3.1' in meta["metrics"]

    other = build_model("tiny", adapter=path)
    for name, value in adapter_state_dict(model).items():
        torch.testing.assert_close(other.get_parameter(name).detach(), value, rtol=0, atol=0)
    a, b = UnSAMv2Predictor(model), UnSAMv2Predictor(other)
    a.set_image(photo)
    b.set_image(photo)
    np.testing.assert_array_equal(a.predict([[50, 60]], [1], [0.2, 0.9])[2],
                                  b.predict([[50, 60]], [1], [0.2, 0.9])[2])


def test_adapter_for_another_rank_or_a_foreign_file_is_rejected(tmp_path):
    from safetensors.torch import save_file

    rank4 = build_model("tiny", lora_rank=4)
    path = str(tmp_path / "rank4.safetensors")
    save_adapter(path, rank4)
    with pytest.raises(InputError, match="wrong shape.*lora_A"):
        load_adapter(build_model("tiny"), path)
    foreign = str(tmp_path / "foreign.safetensors")
    save_file({"x": torch.zeros(2)}, foreign)
    with pytest.raises(InputError, match="not an unsamv2 adapter"):
        load_adapter(build_model("tiny"), foreign)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    with pytest.raises(InputError, match="not a safetensors adapter"):
        read_adapter(str(junk))


def test_adapter_missing_tensors_are_named(fresh_tiny, tmp_path):
    from safetensors.torch import save

    tensors = adapter_state_dict(fresh_tiny)
    tensors.pop("sam_mask_decoder.granularity_token.weight")
    path = tmp_path / "partial.safetensors"
    path.write_bytes(save(tensors, metadata={"format": "unsamv2-adapter"}))
    with pytest.raises(InputError, match="lacks adapter tensors: sam_mask_decoder.granularity_token.weight"):
        load_adapter(fresh_tiny, str(path))


def test_gradients_reach_only_the_adapter(fresh_tiny, photo):
    """The training contract: encode_image + decode, differentiable, SAM-2 frozen."""
    from unsamv2.model.predictor import preprocess_image

    model = fresh_tiny.train()
    images = torch.cat([preprocess_image(photo, model.image_size),
                        preprocess_image(photo[::-1].copy(), model.image_size)])
    with torch.no_grad():
        features = model.encode_image(images)  # (2 images)
    coords = torch.rand(6, 3, 2) * model.image_size  # 3 prompts per image, 3 clicks each
    labels = torch.tensor([[1, 0, -1]] * 6)
    out = model.decode(features, coords, labels, torch.rand(6), torch.randn(6, 1, 64, 64))
    assert out.low_res_logits.shape == (6, 1, 64, 64)
    assert out.iou_pred.shape == (6, 1) and out.object_score_logits.shape == (6, 1)
    (out.low_res_logits.mean() + out.iou_pred.mean()).backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    adapter = set(adapter_parameters(model))
    assert grads and grads <= adapter
    assert any(".lora_" in n for n in grads) and any("granularity_encoder" in n for n in grads)
    assert any("granularity_mlp" in n for n in grads)
    with pytest.raises(ValueError, match="granularity must be"):
        model.decode(features, coords, labels, torch.rand(5))


def test_lora_training_dropout_keeps_nn_dropout_statistics():
    """The training-mode update is dropout(x) A^T B^T * alpha / r: each input kept with
    probability 1 - p and scaled by 1 / (1 - p), so on average it equals the folded eval output."""
    import torch

    torch.manual_seed(0)
    lora = LoRALinear(64, 32, rank=4, alpha=8.0, dropout=0.25)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(4, 64)
    lora.eval()
    expected = lora(x)
    lora.train()
    draws = torch.stack([lora(x) for _ in range(4000)])
    assert torch.allclose(draws.mean(0), expected, atol=0.05 * expected.abs().max().item())
    assert not torch.allclose(draws[0], draws[1])  # random in training
    # the fraction of inputs the mask drops is p: probe with one input at a time through A alone
    single = LoRALinear(1, 1, rank=1, alpha=1.0, dropout=0.25)
    with torch.no_grad():
        single.weight.zero_(), single.bias.zero_(), single.lora_A.fill_(1.0), single.lora_B.fill_(1.0)
    outs = single.train()(torch.ones(20000, 1))
    assert abs((outs == 0).float().mean().item() - 0.25) < 0.015
    assert torch.allclose(outs[outs != 0], torch.tensor(1 / 0.75))
