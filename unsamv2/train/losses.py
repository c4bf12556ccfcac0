"""Training losses (DESIGN.md 2.3), the definitions of SAM-2's training code.

Per object and prediction step, on mask logits at the model-input resolution:

- focal: sigmoid focal loss (alpha 0.25, gamma 2) averaged over the pixels;
- dice: ``1 - (2 |p t| + 1) / (|p| + |t| + 1)`` with ``p = sigmoid(logits)``;
- IoU: ``|pred_iou - IoU(logits > 0, target)|`` (L1);
- object: binary cross-entropy of the object-score logit against "the target is not empty".

Focal, dice and IoU count only for objects whose target is not empty. Each term is summed over
objects and divided by the number of objects (averaged over workers under DDP), then summed over
the prediction steps; the total is ``20 focal + 1 dice + 1 IoU + 1 object`` by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

LOSS_TERMS = ("focal", "dice", "iou", "object")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the four terms and the focal loss parameters."""

    focal: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    object: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0


@dataclass(frozen=True)
class StepPrediction:
    """One prediction step: ``logits`` (N, H, W) float mask logits at the target resolution,
    ``iou_pred`` (N,) predicted IoU, ``object_logits`` (N,) object-score logits."""

    logits: Tensor
    iou_pred: Tensor
    object_logits: Tensor


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """(N, H, W) logits and {0, 1} targets -> (N,) focal loss averaged over pixels.

    ``alpha < 0`` disables the class weighting.
    """
    targets = targets.to(logits.dtype)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.flatten(1).mean(dim=1)


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """(N, H, W) logits and {0, 1} targets -> (N,) soft dice loss (smoothing 1)."""
    prob = logits.sigmoid().flatten(1)
    targets = targets.to(logits.dtype).flatten(1)
    numerator = 2 * (prob * targets).sum(dim=1)
    denominator = prob.sum(dim=1) + targets.sum(dim=1)
    return 1 - (numerator + 1) / (denominator + 1)


def mask_iou(logits: Tensor, targets: Tensor) -> Tensor:
    """(N, H, W) logits and targets -> (N,) IoU of ``logits > 0`` with ``targets > 0``
    (0 when both are empty, as SAM-2's training computes it)."""
    pred = logits.flatten(1) > 0
    gt = targets.flatten(1) > 0
    inter = (pred & gt).sum(dim=1).float()
    union = (pred | gt).sum(dim=1).float()
    return inter / union.clamp(min=1.0)


def iou_l1_loss(logits: Tensor, targets: Tensor, iou_pred: Tensor) -> Tensor:
    """(N,) ``|iou_pred - IoU(logits > 0, targets)|``; no gradient through the actual IoU."""
    return (iou_pred.float() - mask_iou(logits, targets)).abs()


def object_score_loss(object_logits: Tensor, targets: Tensor) -> Tensor:
    """(N,) binary cross-entropy of the object-score logits against "target not empty"."""
    present = targets.flatten(1).any(dim=1).to(object_logits.dtype)
    return F.binary_cross_entropy_with_logits(object_logits, present, reduction="none")


def interactive_loss(steps: Sequence[StepPrediction], targets: Tensor, num_objects: float,
                     weights: LossWeights) -> dict[str, Tensor]:
    """The loss of one batch of click sequences.

    steps: the predictions after click 1, 2, ...; targets: (N, H, W) bool; num_objects: the
    normaliser (objects per worker, averaged over workers). Returns 0-d tensors ``focal``,
    ``dice``, ``iou``, ``object`` (unweighted, summed over steps and objects / num_objects)
    and ``total`` (weighted sum).
    """
    present = targets.flatten(1).any(dim=1).float()
    sums = {name: torch.zeros((), device=targets.device) for name in LOSS_TERMS}
    for step in steps:
        logits = step.logits.float()
        sums["focal"] = sums["focal"] + (sigmoid_focal_loss(logits, targets, weights.focal_alpha,
                                                            weights.focal_gamma) * present).sum()
        sums["dice"] = sums["dice"] + (dice_loss(logits, targets) * present).sum()
        sums["iou"] = sums["iou"] + (iou_l1_loss(logits, targets, step.iou_pred) * present).sum()
        sums["object"] = sums["object"] + object_score_loss(step.object_logits.float(), targets).sum()
    losses = {name: value / num_objects for name, value in sums.items()}
    losses["total"] = (weights.focal * losses["focal"] + weights.dice * losses["dice"]
                       + weights.iou * losses["iou"] + weights.object * losses["object"])
    return losses
