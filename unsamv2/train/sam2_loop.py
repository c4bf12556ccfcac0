"""The interactive forward pass of SAM-2's own supervised training, for base pretraining.

:class:`Sam2ClickLoop` is what SAM-2's ``SAM2Train`` does on single images, on a plain
``SAM2Base`` (no granularity module): embed the images (with gradients: every weight trains),
then per object 1 + ``correction_clicks`` decoder steps:

- click 1 is positive, uniform inside the target; its prediction is **multimask** (SAM-2's 3
  multimask slots; ``multimask_max_pt_num`` = 1), every later step predicts one mask;
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
import torch.nn.functional as F
from torch import Tensor, nn

from unsamv2.model.network import ImageFeatures, encode_sam2_image
from unsamv2.train.clicks import sample_clicks
from unsamv2.train.interactive import repeat_features
from unsamv2.train.losses import StepPrediction, gate_by_object_score


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

    def __init__(self, model: Any, correction_clicks: int = 3, multimask_clicks: int = 1) -> None:
        super().__init__()
        self.model = model
        self.correction_clicks = int(correction_clicks)
        self.multimask_clicks = int(multimask_clicks)

    def forward(self, images: Tensor, targets: Tensor, granularity: Tensor, counts: Tensor,
                generator: torch.Generator) -> list[StepPrediction]:
        del granularity
        size = int(self.model.image_size)
        features = repeat_features(encode_sam2_image(self.model, images), counts)
        points, labels = sample_clicks(targets, None, generator)
        mask_input = None
        steps: list[StepPrediction] = []
        rows = torch.arange(targets.shape[0], device=targets.device)
        for step in range(1 + self.correction_clicks):
            multimask = step < self.multimask_clicks
            low_res, iou, object_logits = decode_sam2(self.model, features, points, labels, mask_input, multimask)
            logits = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
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
