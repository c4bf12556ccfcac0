"""Click simulation for training (docs/architecture.md#training; SAM-2's ``uniform`` point sampler).

One click per object and call, drawn uniformly over the object's *error region* of the current
prediction: false negatives (``gt & ~pred``) give a positive click (label 1), false positives
(``pred & ~gt``) a negative one (label 0). With no prediction yet the error region is the target
itself, so the first click is a positive click uniform inside the target. A prediction without
any error (or an empty target) gets a negative click uniform in the background, as SAM-2's
sampler does; if there is no background either, the click is a negative one at pixel (0, 0).

The uniform draw comes from an explicit ``torch.Generator`` on the CPU (one number per object),
so the clicks are reproducible and resumable whatever device the masks live on.
Coordinates: masks are indexed ``[n, y, x]``; clicks are returned as (x, y) pixel indices in
the masks' frame (the model-input frame during training).
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_clicks(gt: Tensor, pred: Tensor | None, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One click per object.

    gt: (N, H, W) bool targets; pred: (N, H, W) bool current predictions or None (nothing yet);
    generator: a CPU ``torch.Generator``. Returns points (N, 1, 2) float32 (x, y) and labels
    (N, 1) int32 (1 positive, 0 negative), on ``gt``'s device.
    """
    if gt.ndim != 3 or gt.dtype != torch.bool:
        raise ValueError(f"gt must be (N, H, W) bool, got {tuple(gt.shape)} {gt.dtype}")
    n, height, width = gt.shape
    flat_gt = gt.reshape(n, -1)
    if pred is None:
        region = flat_gt
    else:
        if pred.shape != gt.shape or pred.dtype != torch.bool:
            raise ValueError(f"pred must be {tuple(gt.shape)} bool, got {tuple(pred.shape)} {pred.dtype}")
        region = flat_gt ^ pred.reshape(n, -1)
    empty = ~region.any(dim=1, keepdim=True)
    region = torch.where(empty, ~flat_gt, region)  # no error (or empty target): background
    counts = region.sum(dim=1, dtype=torch.int64)
    u = torch.rand(n, generator=generator, dtype=torch.float64).to(gt.device)
    rank = torch.minimum((u * counts).floor().to(torch.int64), (counts - 1).clamp(min=0))
    cumulative = region.cumsum(dim=1, dtype=torch.int32)
    index = torch.searchsorted(cumulative, (rank + 1).to(torch.int32)[:, None], right=False)
    index = torch.where(counts[:, None] > 0, index, torch.zeros_like(index))
    labels = flat_gt.gather(1, index) & (counts[:, None] > 0)
    labels &= ~empty  # a click in the background is negative
    xs, ys = index % width, index // width
    points = torch.stack([xs, ys], dim=-1).to(torch.float32)
    return points, labels.to(torch.int32)
