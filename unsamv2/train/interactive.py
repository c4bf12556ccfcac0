"""The interactive forward pass of training (docs/architecture.md#training) as one ``nn.Module``.

:class:`ClickLoop` embeds the images once, then runs 1 + ``correction_clicks`` decoder steps per
object at the object's g: the first click is positive and uniform inside the target, each next
click is drawn from the error region of the previous prediction (:mod:`unsamv2.train.clicks`),
all clicks so far are passed, and the previous step's low-resolution logits are fed back as the
mask prompt (not detached, as in SAM-2's training). As SAM-2's ``_forward_sam_heads`` does, the
low-resolution logits are first gated by the object score (:func:`gate_by_object_score`: -1024
where the score is <= 0), so the losses, the IoU target, the next click's error map and the
fed-back prompt all see the gated logits. It is a module with a ``forward`` so that
DistributedDataParallel can wrap it (DDP only synchronises gradients of work done in
``forward``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unsamv2.model.network import ImageFeatures, UnSAMv2Model
from unsamv2.train.clicks import sample_clicks
from unsamv2.train.losses import StepPrediction, gate_by_object_score
from unsamv2.train.upsample import upsample_bilinear


def repeat_features(features: ImageFeatures, counts: Tensor) -> ImageFeatures:
    """Image features (B, ...) -> one row per object, ``counts[i]`` rows for image i.

    The rows come out contiguous in the default (NCHW) layout: the encoder's neck hands some levels
    over channels-last, and mixing layouts in the decoder's element-wise ops (skip additions, GELU
    and their backward) takes PyTorch's slow strided paths on CPU.
    """
    embed = features.image_embed.repeat_interleave(counts, dim=0).contiguous()
    high = None if features.high_res is None else (
        features.high_res[0].repeat_interleave(counts, dim=0).contiguous(),
        features.high_res[1].repeat_interleave(counts, dim=0).contiguous())
    return ImageFeatures(embed, high)


class ClickLoop(nn.Module):
    """``forward(images, targets, granularity, counts, generator) -> [StepPrediction, ...]``.

    images (B, 3, S, S) normalised; targets (N, S, S) bool, image i's objects contiguous;
    granularity (N,); counts (B,) int64; generator: CPU ``torch.Generator`` for the clicks.
    ``train_encoder``: run the image encoder with gradients (``full`` mode) or under no_grad.
    The returned logits are upsampled to S x S (where the loss is computed, as SAM-2 does).
    """

    def __init__(self, model: UnSAMv2Model, correction_clicks: int = 3, train_encoder: bool = False) -> None:
        super().__init__()
        self.model = model
        self.correction_clicks = int(correction_clicks)
        self.train_encoder = bool(train_encoder)

    def forward(self, images: Tensor, targets: Tensor, granularity: Tensor, counts: Tensor,
                generator: torch.Generator) -> list[StepPrediction]:
        size = self.model.image_size
        if self.train_encoder:
            features = self.model.encode_image(images)
        else:
            with torch.no_grad():
                features = self.model.encode_image(images)
        features = repeat_features(features, counts)
        points, labels = sample_clicks(targets, None, generator)
        mask_input = None
        steps: list[StepPrediction] = []
        for step in range(1 + self.correction_clicks):
            out = self.model.decode(features, points, labels, granularity, mask_input)
            low_res = gate_by_object_score(out.low_res_logits, out.object_score_logits)
            logits = upsample_bilinear(low_res[:, 0], (size, size))
            steps.append(StepPrediction(logits, out.iou_pred[:, 0], out.object_score_logits[:, 0]))
            if step == self.correction_clicks:
                break
            new_points, new_labels = sample_clicks(targets, logits.detach() > 0, generator)
            points = torch.cat([points, new_points], dim=1)
            labels = torch.cat([labels, new_labels], dim=1)
            mask_input = low_res
        return steps
