"""LoRA on the mask decoder's two-way transformer (docs/architecture.md#model).

``LoRALinear`` *is* an ``nn.Linear`` (same ``weight`` / ``bias`` keys as the SAM-2 layer it
replaces, so plain SAM-2 checkpoints load unchanged) with a low-rank update:

    y = x W^T + b + (dropout(x) A^T B^T) * alpha / r,   A: (r, in) ~ N(0, 0.01^2),  B: (out, r) = 0

``apply_lora`` wraps q/k/v/out of all attention modules of a ``TwoWayTransformer``: per layer
self-attention, token-to-image and image-to-token cross-attention, plus the final token-to-image
attention — 7 modules, 28 projections for SAM-2's depth-2 decoder.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


class LoRALinear(nn.Linear):
    """A frozen-able linear layer with a trainable low-rank update (see module docstring)."""

    def __init__(self, in_features: int, out_features: int, *, rank: int = 8,
                 alpha: float = 16.0, dropout: float = 0.1, bias: bool = True,
                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        if rank <= 0:
            raise ValueError(f"LoRA rank must be positive, got {rank}")
        self.rank = rank
        self.alpha = float(alpha)
        self.scaling = self.alpha / rank
        self.lora_A = nn.Parameter(torch.randn(rank, in_features, device=device, dtype=dtype) * 0.01)
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank, device=device, dtype=dtype))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @classmethod
    def from_linear(cls, linear: nn.Linear, *, rank: int, alpha: float,
                    dropout: float) -> LoRALinear:
        """A LoRA layer sharing ``linear``'s weight and bias tensors (fresh A and B)."""
        layer = cls(linear.in_features, linear.out_features, rank=rank, alpha=alpha,
                    dropout=dropout, bias=linear.bias is not None,
                    device=linear.weight.device, dtype=linear.weight.dtype)
        layer.weight = linear.weight
        if linear.bias is not None:
            layer.bias = linear.bias
        return layer

    def forward(self, x: Tensor) -> Tensor:
        if self.training and isinstance(self.lora_dropout, nn.Dropout) and self.lora_dropout.p > 0:
            # dropout(x) @ A^T with the same distribution as nn.Dropout (each input kept with
            # probability 1 - p, scaled by 1 / (1 - p)), in as few passes over x as eager PyTorch
            # allows (the decoder's repeated image tokens make x large): one uniform draw turned
            # in place into a 1.0 / 0.0 keep mask, one multiply (whose backward is one multiply),
            # the 1 / (1 - p) scale on the small A, and B's product added inside the matmul.
            p = self.lora_dropout.p
            keep = torch.rand(x.shape, device=x.device, dtype=x.dtype).ge_(p)
            low = (x * keep).reshape(-1, x.shape[-1]) @ (self.lora_A.T * (self.scaling / (1.0 - p)))
            base = F.linear(x, self.weight, self.bias).reshape(-1, self.out_features)
            return torch.addmm(base, low, self.lora_B.T).reshape(*x.shape[:-1], self.out_features)
        # Without dropout the update is linear in x: fold it into the weight (one matmul over
        # the, possibly many, image tokens instead of three). Same result up to float rounding.
        merged = self.weight + (self.lora_B @ self.lora_A) * self.scaling
        return F.linear(x, merged, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha:g}"


def attention_modules(transformer: nn.Module) -> list[tuple[str, nn.Module]]:
    """The attention modules of a SAM-2 ``TwoWayTransformer``, as (name, module), in order."""
    found = []
    layers = cast(nn.ModuleList, transformer.layers)
    for index, layer in enumerate(layers):
        for name in ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token"):
            found.append((f"layers.{index}.{name}", getattr(layer, name)))
    found.append(("final_attn_token_to_image", transformer.final_attn_token_to_image))
    return found


def apply_lora(transformer: nn.Module, *, rank: int = 8, alpha: float = 16.0,
               dropout: float = 0.1) -> list[str]:
    """Replace q/k/v/out of every attention module by ``LoRALinear``; returns the wrapped names."""
    wrapped = []
    for name, attention in attention_modules(transformer):
        for proj in PROJECTIONS:
            linear = getattr(attention, proj)
            if isinstance(linear, LoRALinear):
                continue
            setattr(attention, proj, LoRALinear.from_linear(linear, rank=rank, alpha=alpha,
                                                            dropout=dropout))
            wrapped.append(f"{name}.{proj}")
    return wrapped
