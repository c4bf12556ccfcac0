"""The held-out validation at the end of a training run: loss and IoU after the first and the
last click on the validation images (eval mode, fixed clicks, no augmentation)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from unsamv2.train.losses import LossWeights, interactive_loss, mask_iou


def best_iou(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N,) IoU of a step's mask, the best of M for a multimask step ((N, M, S, S) logits)."""
    if logits.ndim == 3:
        return mask_iou(logits, masks)
    return mask_iou(logits, masks[:, None].expand_as(logits)).max(dim=1).values


@torch.no_grad()
def heldout_metrics(module: Any, model: torch.nn.Module, batches: Sequence[Any], weights: LossWeights,
                    clicks: torch.Generator, device: torch.device,
                    autocast: Callable[[], Any]) -> dict[str, float]:
    """``val_loss``, ``val_iou_click1`` (best of 3 for base pretraining), ``val_iou_last_click``
    and ``val_objects`` of the click loop ``module`` on ``batches`` (``model`` in eval mode meanwhile)."""
    model.eval()
    totals, first, last, objects = 0.0, 0.0, 0.0, 0
    try:
        for batch in batches:
            batch = batch.to(device)
            with autocast():
                steps = module(batch.images, batch.masks, batch.granularity, batch.counts, clicks)
            totals += float(interactive_loss(steps, batch.masks, 1.0, weights)["total"])
            first += float(best_iou(steps[0].logits.float(), batch.masks).sum())
            last += float(best_iou(steps[-1].logits.float(), batch.masks).sum())
            objects += batch.num_objects
    finally:
        model.train()
    return {"val_loss": totals / max(objects, 1), "val_iou_click1": first / max(objects, 1),
            "val_iou_last_click": last / max(objects, 1), "val_objects": float(objects)}
