"""SAM-2's mask decoder plus the granularity-aware output token (docs/architecture.md#model).

Output tokens, in order: [object-score token], IoU token, SAM-2's 4 mask tokens, **granularity
token**; then the sparse prompt tokens (points, padding point, granularity prompt). The
granularity token's transformer output goes through its own hypernetwork MLP (256 -> 256 -> 256
-> 32) and its dot product with the upscaled image embedding is the model's mask. The predicted
IoU is SAM-2's frozen IoU head on its single-mask slot (index 0), or — in multimask mode, as in
the reference — the maximum over SAM-2's three multimask slots. The object score is SAM-2's
frozen head. The granularity token's output is returned as the "SAM output token", so SAM-2's
video code turns it into the object pointer.
"""

from __future__ import annotations

import torch
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam2_utils import MLP
from torch import Tensor, nn


class GranularityMaskDecoder(MaskDecoder):
    """``MaskDecoder`` whose single output is the granularity token's mask.

    Keyword arguments are SAM-2's ``MaskDecoder`` ones. ``forward`` has SAM-2's signature and
    returns ``(masks (B, 1, 4h, 4w), iou (B, 1), token (B, 1, C), object_score_logits (B, 1))``
    whatever ``multimask_output`` is (it only selects how the IoU is read, see module docstring).
    """

    def __init__(self, **mask_decoder_kwargs: object) -> None:
        super().__init__(**mask_decoder_kwargs)
        dim = self.transformer_dim
        self.granularity_token = nn.Embedding(1, dim)
        self.granularity_mlp = MLP(dim, dim, dim // 8, 3)

    def forward(self, image_embeddings: Tensor, image_pe: Tensor, sparse_prompt_embeddings: Tensor,
                dense_prompt_embeddings: Tensor, multimask_output: bool, repeat_image: bool,
                high_res_features: list[Tensor] | None = None,
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        masks, iou_all, token, object_score_logits = self.predict_masks(
            image_embeddings=image_embeddings, image_pe=image_pe,
            sparse_prompt_embeddings=sparse_prompt_embeddings,
            dense_prompt_embeddings=dense_prompt_embeddings, repeat_image=repeat_image,
            high_res_features=high_res_features)
        if multimask_output:
            iou = iou_all[:, 1:].max(dim=1, keepdim=True).values
        else:
            iou = iou_all[:, 0:1]
        return masks, iou, token, object_score_logits

    def _output_tokens(self) -> Tensor:
        """(T, C): [object-score], IoU, SAM-2's mask tokens, granularity token."""
        parts = [self.iou_token.weight, self.mask_tokens.weight, self.granularity_token.weight]
        if self.pred_obj_scores:
            parts.insert(0, self.obj_score_token.weight)
        return torch.cat(parts, dim=0)

    def _upscale(self, src: Tensor, high_res_features: list[Tensor] | None) -> Tensor:
        """(B, C, h, w) -> (B, C/8, 4h, 4w), SAM-2's upscaling (with its high-res skip features)."""
        if not self.use_high_res_features:
            return self.output_upscaling(src)
        deconv1, norm1, act1, deconv2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res_features
        upscaled = act1(norm1(deconv1(src) + feat_s1))
        return act2(deconv2(upscaled) + feat_s0)

    def predict_masks(self, image_embeddings: Tensor, image_pe: Tensor,
                      sparse_prompt_embeddings: Tensor, dense_prompt_embeddings: Tensor,
                      repeat_image: bool, high_res_features: list[Tensor] | None = None,
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Returns (granularity mask (B, 1, 4h, 4w), all IoU predictions (B, 4),
        granularity token output (B, 1, C), object score logits (B, 1))."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = self._output_tokens().unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)
        if repeat_image:
            src = torch.repeat_interleave(image_embeddings, batch, dim=0)
        else:
            if image_embeddings.shape[0] != batch:
                raise ValueError(f"{image_embeddings.shape[0]} image embeddings for {batch} prompts")
            src = image_embeddings
        src = src + dense_prompt_embeddings
        pos_src = image_pe.expand(batch, -1, -1, -1)  # the same for every prompt: a view, no copy
        b, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)
        first = 1 if self.pred_obj_scores else 0
        iou_token_out = hs[:, first, :]
        granularity_out = hs[:, first + 1 + self.num_mask_tokens, :]

        upscaled = self._upscale(src.transpose(1, 2).reshape(b, c, h, w), high_res_features)
        hyper = self.granularity_mlp(granularity_out)  # (B, C/8)
        _, c_up, h_up, w_up = upscaled.shape
        masks = (hyper[:, None, :] @ upscaled.reshape(b, c_up, h_up * w_up)).reshape(b, 1, h_up, w_up)

        iou_pred = self.iou_prediction_head(iou_token_out)
        if self.pred_obj_scores:
            object_score_logits = self.pred_obj_score_head(hs[:, 0, :])
        else:
            object_score_logits = 10.0 * iou_pred.new_ones(iou_pred.shape[0], 1)
        return masks, iou_pred, granularity_out[:, None, :], object_score_logits
