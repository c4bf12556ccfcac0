"""The optimizer's parameter groups, as SAM-2's training configs set them.

SAM-2 gives the image encoder its own learning rate (``scratch.vision_lr``, 0.6 of
``scratch.base_lr`` in the SAM-2.1 configs); ``encoder_lr_scale`` is that ratio.

SAM-2 (``sam2.1_training/*.yaml``, ``optim.options.weight_decay``) decays every parameter with
the configured weight decay except biases (names matching ``*bias*``) and the parameters of
``torch.nn.LayerNorm`` modules, which get 0. Without that split a weight decay large enough to
matter (SAM-2 uses 0.1) would also pull every LayerNorm gain towards zero.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def no_decay_names(model: nn.Module) -> set[str]:
    """Names of the parameters SAM-2 does not decay: biases and ``torch.nn.LayerNorm`` parameters."""
    names = {name for name, _ in model.named_parameters() if "bias" in name}
    for module_name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm):
            prefix = f"{module_name}." if module_name else ""
            names.update(f"{prefix}{name}" for name, _ in module.named_parameters(recurse=False))
    return names


def param_groups(model: nn.Module, lr: float, weight_decay: float,
                 encoder_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """AdamW groups of ``model``'s trainable parameters: ``weight_decay`` for the decayed ones,
    0 for :func:`no_decay_names`; ``lr * encoder_lr_scale`` for the image encoder's
    (``image_encoder.*``, SAM-2's ``vision_lr``), ``lr`` for the rest. Empty groups are left out;
    the order is fixed so optimizer states restore across runs of the same model."""
    skip = no_decay_names(model)
    buckets: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {
        (encoder, decay): [] for encoder in (True, False) for decay in (True, False)}
    for name, param in model.named_parameters():
        if param.requires_grad:
            buckets[(name.startswith("image_encoder."), name not in skip)].append(param)
    return [{"params": params, "lr": lr * (encoder_lr_scale if encoder else 1.0),
             "weight_decay": weight_decay if decay else 0.0}
            for (encoder, decay), params in buckets.items() if params]
