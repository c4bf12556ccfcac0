"""SAM-2's optimizer groups: no weight decay on biases and LayerNorms, the encoder's own lr."""

from __future__ import annotations

import torch
from torch import nn

from unsamv2.train.optim import no_decay_names, param_groups


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.decoder = nn.Linear(4, 2, bias=False)
        self.scale = nn.Parameter(torch.ones(3))  # a 1-d parameter that is neither: decayed, as SAM-2


def test_biases_and_layernorm_parameters_are_not_decayed():
    assert no_decay_names(_Toy()) == {"image_encoder.0.bias", "image_encoder.1.weight", "image_encoder.1.bias"}


def test_groups_carry_the_encoder_lr_and_the_decay_and_cover_every_trainable_parameter_once():
    model = _Toy()
    model.decoder.weight.requires_grad_(False)
    groups = param_groups(model, lr=1e-3, weight_decay=0.1, encoder_lr_scale=0.25)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    got = {names[i]: v for i, v in by_param.items()}
    assert got == {"image_encoder.0.weight": (2.5e-4, 0.1), "image_encoder.0.bias": (2.5e-4, 0.0),
                   "image_encoder.1.weight": (2.5e-4, 0.0), "image_encoder.1.bias": (2.5e-4, 0.0),
                   "scale": (1e-3, 0.1)}
    assert sum(len(g["params"]) for g in groups) == len(by_param)  # no parameter twice


def test_adamw_with_the_groups_leaves_an_undecayed_bias_alone_when_its_gradient_is_zero():
    model = _Toy()
    before = model.image_encoder[0].bias.detach().clone()
    weight = model.image_encoder[0].weight.detach().clone()
    optimizer = torch.optim.AdamW(param_groups(model, lr=0.1, weight_decay=0.5), lr=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    torch.testing.assert_close(model.image_encoder[0].bias, before)  # no decay
    torch.testing.assert_close(model.image_encoder[0].weight, weight * (1 - 0.1 * 0.5))  # decoupled decay
