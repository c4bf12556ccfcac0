"""Training losses (docs/architecture.md#training), the definitions of SAM-2's training code.

Per object and prediction step, on mask logits at the model-input resolution (already gated by
the object score, :func:`gate_by_object_score`, as SAM-2 does before its losses):

- focal: sigmoid focal loss (alpha 0.25, gamma 2) averaged over the pixels;
- dice: ``1 - (2 |p t| + 1) / (|p| + |t| + 1)`` with ``p = sigmoid(logits)``;
- IoU: ``|pred_iou - IoU(logits > 0, target)|`` (L1);
- object: binary cross-entropy of the object-score logit against "the target is not empty".

Focal, dice and IoU count only for objects whose target is not empty. Each term is summed over
objects and divided by the number of objects (averaged over workers under DDP), then summed over
the prediction steps; the total is ``20 focal + 1 dice + 1 IoU + 1 object`` by default.

A step may predict M > 1 masks per object (SAM-2's multimask output on the first click, used by
base pretraining): then only the mask with the lowest ``20 focal + 1 dice`` is penalised for focal
and dice (SAM-2's ``MultiStepMultiMasksAndIous``), and the IoU term is the mean over all M
masks (``supervise_all_iou``, SAM-2.1's training setting) or the chosen mask's only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

LOSS_TERMS = ("focal", "dice", "iou", "object")
NO_OBJECT_SCORE = -1024.0  # SAM-2's NO_OBJ_SCORE: the logit of every pixel when no object is predicted


@dataclass(frozen=True)
class LossWeights:
    """Weights of the four terms and the focal loss parameters."""

    focal: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    object: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    supervise_all_iou: bool = True


@dataclass(frozen=True)
class StepPrediction:
    """One prediction step: ``logits`` (N, H, W) float mask logits at the target resolution,
    ``iou_pred`` (N,) predicted IoU, ``object_logits`` (N,) object-score logits; or, for a
    multimask step, ``logits`` (N, M, H, W) and ``iou_pred`` (N, M)."""

    logits: Tensor
    iou_pred: Tensor
    object_logits: Tensor


def gate_by_object_score(logits: Tensor, object_logits: Tensor) -> Tensor:
    """SAM-2's object-score gate: where the object score is <= 0 every logit of that object's
    masks becomes :data:`NO_OBJECT_SCORE` (-1024), else it is kept.

    logits (N, ...) float; object_logits (N,) or (N, 1). Gradients flow only through kept rows.
    """
    keep = (object_logits.reshape(object_logits.shape[0]) > 0).reshape(-1, *([1] * (logits.ndim - 1)))
    return torch.where(keep, logits, torch.full_like(logits, NO_OBJECT_SCORE))


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """(N, H, W) logits and {0, 1} targets -> (N,) focal loss averaged over pixels
    ((N, M, H, W) and same-shape targets -> (N, M)).

    ``alpha < 0`` disables the class weighting. The textbook form; training computes the same
    values in fewer passes with :func:`fused_mask_losses`.
    """
    targets = targets.to(logits.dtype)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.flatten(-2).mean(dim=-1)


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """(N, [M,] H, W) logits and same-shape {0, 1} targets -> (N, [M]) soft dice loss (smoothing 1)."""
    prob = logits.sigmoid().flatten(-2)
    targets = targets.to(logits.dtype).flatten(-2)
    numerator = 2 * (prob * targets).sum(dim=-1)
    denominator = prob.sum(dim=-1) + targets.sum(dim=-1)  # targets may broadcast over M
    return 1 - (numerator + 1) / (denominator + 1)


def mask_iou(logits: Tensor, targets: Tensor) -> Tensor:
    """(N, [M,] H, W) logits and targets -> (N, [M]) IoU of ``logits > 0`` with ``targets > 0``
    (0 when both are empty, as SAM-2's training computes it)."""
    pred = logits.flatten(-2) > 0
    gt = targets.flatten(-2) > 0
    inter = (pred & gt).sum(dim=-1).float()
    union = (pred | gt).sum(dim=-1).float()
    return inter / union.clamp(min=1.0)


def iou_l1_loss(logits: Tensor, targets: Tensor, iou_pred: Tensor) -> Tensor:
    """(N, [M]) ``|iou_pred - IoU(logits > 0, targets)|``; no gradient through the actual IoU."""
    return (iou_pred.float() - mask_iou(logits, targets)).abs()


def object_score_loss(object_logits: Tensor, targets: Tensor) -> Tensor:
    """(N,) binary cross-entropy of the object-score logits against "target not empty"."""
    present = targets.flatten(1).any(dim=1).to(object_logits.dtype)
    return F.binary_cross_entropy_with_logits(object_logits, present, reduction="none")


class TargetStats:
    """What every step's losses need of the targets, computed once per batch.

    ``targets`` (N, H, W) bool. Attributes, flattened over the pixels P = H * W: ``truth``
    (N, P) bool; ``sign`` (N, P) float ``1 - 2 t`` (the focal loss's ``-z = sign * logit``);
    ``weight`` (N, P) float ``alpha_t / P`` (or ``1 / P`` when alpha < 0), so a per-pixel focal
    sum is the pixel mean; ``truth_f`` (N, P) float ``t``; ``count`` (N,) float ``|t|``;
    ``present`` (N,) float "target not empty".
    """

    def __init__(self, targets: Tensor, weights: LossWeights, dtype: torch.dtype = torch.float32) -> None:
        n = targets.shape[0]
        self.truth = targets.reshape(n, -1)
        self.truth_f = self.truth.to(dtype)
        self.sign = 1.0 - 2.0 * self.truth_f
        pixels = self.truth.shape[1]
        if weights.focal_alpha >= 0:
            alpha_t = torch.where(self.truth, weights.focal_alpha, 1.0 - weights.focal_alpha)
            self.weight = (alpha_t / pixels).to(dtype)
        else:
            self.weight = torch.full_like(self.truth_f, 1.0 / pixels)
        self.count = self.truth_f.sum(dim=1)
        self.present = (self.count > 0).to(dtype)


def fused_mask_losses(logits: Tensor, stats: TargetStats, gamma: float) -> tuple[Tensor, Tensor, Tensor]:
    """(N, [M,] H, W) logits -> (N, [M]) focal, dice and IoU-of-``logits > 0``: the values of
    :func:`sigmoid_focal_loss`, :func:`dice_loss` and :func:`mask_iou` (up to float rounding) in
    fewer passes over the pixels, which dominate training's loss on CPU.

    One sigmoid serves both losses: with ``q = sigmoid(-z)`` (``-z = (1 - 2 t) x``) the focal
    loss is ``alpha_t softplus(-z) q^gamma`` and the dice probability is ``p = t + (1 - 2 t) q``,
    so ``sum p t = |t| - sum q t`` and ``sum p = |t| - 2 sum q t + sum q``: the dice needs two
    reductions of q and no p.
    """
    shape = logits.shape[:-2]
    flat = logits.reshape(stats.truth.shape[0], -1, stats.truth.shape[1])  # (N, M, P)
    neg = flat * stats.sign[:, None]
    q = torch.sigmoid(neg)
    modulation = q * q if gamma == 2 else q ** gamma
    per_pixel = F.softplus(neg, threshold=50) * modulation
    focal = (per_pixel * stats.weight[:, None]).sum(dim=-1)  # (N, M)
    q_true = (q * stats.truth_f[:, None]).sum(dim=-1)
    count = stats.count[:, None]
    dice = 1 - (2 * (count - q_true) + 1) / (count - 2 * q_true + q.sum(dim=-1) + count + 1)
    pred = flat > 0
    inter = (pred & stats.truth[:, None]).sum(dim=-1).to(logits.dtype)
    union = pred.sum(dim=-1).to(logits.dtype) + count - inter
    iou = inter / union.clamp(min=1.0)
    return focal.reshape(shape), dice.reshape(shape), iou.reshape(shape)


def interactive_loss(steps: Sequence[StepPrediction], targets: Tensor, num_objects: float,
                     weights: LossWeights) -> dict[str, Tensor]:
    """The loss of one batch of click sequences.

    steps: the predictions after click 1, 2, ...; targets: (N, H, W) bool; num_objects: the
    normaliser (objects per worker, averaged over workers). Returns 0-d tensors ``focal``,
    ``dice``, ``iou``, ``object`` (unweighted, summed over steps and objects / num_objects)
    and ``total`` (weighted sum).
    """
    stats = TargetStats(targets, weights)
    present = stats.present
    sums = {name: torch.zeros((), device=targets.device) for name in LOSS_TERMS}
    for step in steps:
        focal, dice, iou = step_mask_losses(step, stats, weights)
        sums["focal"] = sums["focal"] + (focal * present).sum()
        sums["dice"] = sums["dice"] + (dice * present).sum()
        sums["iou"] = sums["iou"] + (iou * present).sum()
        sums["object"] = sums["object"] + object_score_loss(step.object_logits.float(), targets).sum()
    losses = {name: value / num_objects for name, value in sums.items()}
    losses["total"] = (weights.focal * losses["focal"] + weights.dice * losses["dice"]
                       + weights.iou * losses["iou"] + weights.object * losses["object"])
    return losses


def step_mask_losses(step: StepPrediction, stats: TargetStats, weights: LossWeights) -> tuple[Tensor, Tensor, Tensor]:
    """(N,) focal, dice and IoU losses of one step; for a multimask step (logits (N, M, H, W)),
    focal and dice of the mask with the lowest ``weights.focal * focal + weights.dice * dice``,
    and IoU as the mean over the M masks (``supervise_all_iou``) or of that mask. The IoU term
    is ``|pred_iou - IoU(logits > 0, target)|`` with no gradient through the actual IoU."""
    logits = step.logits.float()
    focal, dice, actual = fused_mask_losses(logits, stats, weights.focal_gamma)
    iou = (step.iou_pred.float() - actual.detach()).abs()
    if logits.ndim == 3:
        return focal, dice, iou
    best = torch.argmin(weights.focal * focal + weights.dice * dice, dim=1, keepdim=True)
    chosen_iou = iou.mean(dim=1) if weights.supervise_all_iou else iou.gather(1, best)[:, 0]
    return focal.gather(1, best)[:, 0], dice.gather(1, best)[:, 0], chosen_iou
