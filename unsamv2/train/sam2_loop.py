"""The interactive forward pass of SAM-2's own supervised training, for base pretraining.

:class:`Sam2ClickLoop` is what SAM-2's ``SAM2Train`` does on single images, on a plain
``SAM2Base`` (no granularity module): embed the images (with gradients: every weight trains),
then per object 1 + ``correction_clicks`` decoder steps:

- the first prompt is, for the whole batch, a box (the target's bounding box, SAM-2's corner
  points with labels 2 / 3) with probability ``box_prob`` (SAM-2's
  ``prob_to_use_box_input_for_train``), else one positive click uniform inside the target;
- a one-click prediction is **multimask** (SAM-2's 3 multimask slots; ``multimask_max_pt_num``
  = 1), a box or several clicks predict one mask;
- every step's low-resolution logits are gated by the object score (-1024 where it is <= 0);
- the mask that continues (next click's error map, fed-back mask prompt) is the multimask slot
  with the highest *predicted* IoU, as in ``_forward_sam_heads``;
- each correction click is uniform in the error region of that mask (upsampled to S x S), all
  clicks so far are passed, and the previous low-res logits are the mask prompt (not detached).

The loss (:func:`unsamv2.train.losses.interactive_loss`) then penalises only the best of the 3
first-click masks, as SAM-2's ``MultiStepMultiMasksAndIous``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from unsamv2.model.network import ImageFeatures, encode_sam2_image
from unsamv2.train.clicks import sample_clicks
from unsamv2.train.interactive import repeat_features
from unsamv2.train.losses import StepPrediction, gate_by_object_score
from unsamv2.train.upsample import upsample_bilinear


def decode_sam2(model: Any, features: ImageFeatures, points: Tensor, labels: Tensor,
                mask_input: Tensor | None, multimask: bool) -> tuple[Tensor, Tensor, Tensor]:
    """SAM-2's prompt encoder + mask decoder on one row of prompts per feature row.

    points (N, K, 2) float (x, y) model-input pixels; labels (N, K) int; mask_input
    (N, 1, S/4, S/4) logits or None. Returns gated low-res logits (N, M, S/4, S/4) with M = 3
    (multimask) or 1, predicted IoU (N, M) and object-score logits (N, 1).
    """
    sparse, dense = model.sam_prompt_encoder(points=(points, labels), boxes=None, masks=mask_input)
    high_res = None if features.high_res is None else list(features.high_res)
    logits, iou, _, object_logits = model.sam_mask_decoder(
        image_embeddings=features.image_embed, image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
        repeat_image=False, high_res_features=high_res)
    return gate_by_object_score(logits, object_logits), iou, object_logits


class Sam2ClickLoop(nn.Module):
    """``forward(images, targets, granularity, counts, generator) -> [StepPrediction, ...]``.

    Same signature as :class:`unsamv2.train.interactive.ClickLoop` (``granularity`` is ignored:
    a SAM-2 base has no dial), so the training recipe drives either. images (B, 3, S, S)
    normalised; targets (N, S, S) bool, image i's objects contiguous; counts (B,) int64. The
    first step's logits are (N, 3, S, S) with iou (N, 3); later steps (N, S, S) and (N,).
    """

    def __init__(self, model: Any, correction_clicks: int = 3, box_prob: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.correction_clicks = int(correction_clicks)
        self.box_prob = float(box_prob)

    def forward(self, images: Tensor, targets: Tensor, granularity: Tensor, counts: Tensor,
                generator: torch.Generator) -> list[StepPrediction]:
        del granularity
        size = int(self.model.image_size)
        features = repeat_features(encode_sam2_image(self.model, images), counts)
        use_box = self.box_prob > 0 and float(torch.rand((), generator=generator)) < self.box_prob
        points, labels = box_prompts(targets) if use_box else sample_clicks(targets, None, generator)
        mask_input = None
        steps: list[StepPrediction] = []
        rows = torch.arange(targets.shape[0], device=targets.device)
        for step in range(1 + self.correction_clicks):
            multimask = step == 0 and not use_box
            low_res, iou, object_logits = decode_sam2(self.model, features, points, labels, mask_input, multimask)
            logits = upsample_bilinear(low_res, (size, size))
            if multimask:
                steps.append(StepPrediction(logits, iou, object_logits[:, 0]))
            else:
                steps.append(StepPrediction(logits[:, 0], iou[:, 0], object_logits[:, 0]))
            if step == self.correction_clicks:
                break
            best = iou.argmax(dim=1)
            chosen = logits[rows, best]
            new_points, new_labels = sample_clicks(targets, chosen.detach() > 0, generator)
            points = torch.cat([points, new_points], dim=1)
            labels = torch.cat([labels, new_labels], dim=1)
            mask_input = low_res[rows, best][:, None]
        return steps


def box_prompts(targets: Tensor) -> tuple[Tensor, Tensor]:
    """Each target's bounding box as SAM-2's box prompt (its ``mask_to_box``): points (N, 2, 2)
    float, (x, y) of the first and last pixel of the mask in x and y, labels (N, 2) int32 (2, 3).
    An empty target gets the whole image."""
    n, height, width = targets.shape
    rows, cols = targets.any(dim=2), targets.any(dim=1)  # (N, H), (N, W)
    ys = torch.arange(height, device=targets.device)
    xs = torch.arange(width, device=targets.device)
    y1 = torch.where(rows, ys, height).min(dim=1).values
    y2 = torch.where(rows, ys, -1).max(dim=1).values
    x1 = torch.where(cols, xs, width).min(dim=1).values
    x2 = torch.where(cols, xs, -1).max(dim=1).values
    empty = ~rows.any(dim=1)
    x1, y1 = torch.where(empty, 0, x1), torch.where(empty, 0, y1)
    x2, y2 = torch.where(empty, width - 1, x2), torch.where(empty, height - 1, y2)
    points = torch.stack([torch.stack([x1, y1], -1), torch.stack([x2, y2], -1)], 1).to(torch.float32)
    labels = torch.tensor([2, 3], dtype=torch.int32, device=targets.device).expand(n, 2).clone()
    return points, labels
