"""``UnSAMv2Model``: SAM-2 (its video-capable class) with the granularity module attached.

Build it with :func:`unsamv2.model.build_model`, not directly. The class subclasses SAM-2's
``SAM2VideoPredictor`` only to swap in three pieces when SAM-2 builds its heads
(``GranularityPromptEncoder``, ``GranularityMaskDecoder`` and LoRA on the decoder's two-way
transformer); every other part is SAM-2's code and SAM-2's parameter names.

Training contract (differentiable, no predictor facade)::

    features = model.encode_image(images)        # images (B, 3, S, S) float, SAM-2-normalised
    out = model.decode(features, point_coords, point_labels, granularity, mask_input)
    out.low_res_logits (B', 1, S/4, S/4), out.iou_pred (B', 1), out.object_score_logits (B', 1)

with S = ``model.image_size``; gradients reach the adapter parameters (see
:mod:`unsamv2.model.adapter`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypedDict

import torch
from sam2.sam2_video_predictor import SAM2VideoPredictor
from torch import Tensor

from unsamv2.model.decoder import GranularityMaskDecoder
from unsamv2.model.granularity import GranularityPromptEncoder
from unsamv2.model.lora import apply_lora


class ImageFeatures(NamedTuple):
    """What the decoder needs from the image encoder.

    image_embed: (B, C, S/16, S/16) float (no-memory embedding already added, as SAM-2 does on
    images); high_res: (feat_s0 (B, C/8, S/4, S/4), feat_s1 (B, C/4, S/8, S/8)) or None when
    the config does not use high-resolution features.
    """

    image_embed: Tensor
    high_res: tuple[Tensor, Tensor] | None


class DecoderOutput(NamedTuple):
    """low_res_logits (B, 1, S/4, S/4) float mask logits; iou_pred (B, 1) predicted IoU;
    object_score_logits (B, 1) (> 0 means "object present")."""

    low_res_logits: Tensor
    iou_pred: Tensor
    object_score_logits: Tensor


class _AdapterOptions(TypedDict):
    lora_rank: int
    lora_alpha: float
    lora_dropout: float
    num_frequencies: int
    temperature: float
    granularity_dropout: float


class UnSAMv2Model(SAM2VideoPredictor):
    """SAM-2 + granularity encoder, granularity output token and decoder LoRA.

    Extra constructor arguments (the rest are SAM-2's, from its YAML config): ``lora_rank``
    (0 disables LoRA), ``lora_alpha`` (default 2 * rank), ``lora_dropout``, ``fourier_dim``
    (2 x number of frequencies), ``temperature`` (frequency base), ``granularity_dropout``.
    """

    def __init__(self, *, lora_rank: int = 8, lora_alpha: float | None = None,
                 lora_dropout: float = 0.1, fourier_dim: int = 128, temperature: float = 100.0,
                 granularity_dropout: float = 0.1, **sam2_kwargs: Any) -> None:
        # SAM2Base.__init__ calls _build_sam_heads, which needs these.
        self._adapter_options: _AdapterOptions = {
            "lora_rank": int(lora_rank),
            "lora_alpha": float(lora_alpha if lora_alpha is not None else 2 * lora_rank),
            "lora_dropout": float(lora_dropout),
            "num_frequencies": int(fourier_dim) // 2,
            "temperature": float(temperature),
            "granularity_dropout": float(granularity_dropout),
        }
        super().__init__(**sam2_kwargs)

    # SAM-2's heads, replaced by ours in _build_sam_heads
    sam_prompt_encoder: GranularityPromptEncoder
    sam_mask_decoder: GranularityMaskDecoder

    # ----------------------------------------------------------------------------- building
    def _build_sam_heads(self) -> None:
        super()._build_sam_heads()
        options = self._adapter_options
        size = self.sam_image_embedding_size
        self.sam_prompt_encoder = GranularityPromptEncoder(
            embed_dim=self.sam_prompt_embed_dim, image_embedding_size=(size, size),
            input_image_size=(self.image_size, self.image_size), mask_in_chans=16,
            num_frequencies=options["num_frequencies"], temperature=options["temperature"],
            dropout=options["granularity_dropout"])
        self.sam_mask_decoder = GranularityMaskDecoder(
            num_multimask_outputs=3, transformer=self.sam_mask_decoder.transformer,
            transformer_dim=self.sam_prompt_embed_dim, iou_head_depth=3, iou_head_hidden_dim=256,
            use_high_res_features=self.use_high_res_features_in_sam,
            iou_prediction_use_sigmoid=self.iou_prediction_use_sigmoid,
            pred_obj_scores=self.pred_obj_scores, pred_obj_scores_mlp=self.pred_obj_scores_mlp,
            use_multimask_token_for_obj_ptr=self.use_multimask_token_for_obj_ptr,
            **(self.sam_mask_decoder_extra_args or {}))
        if options["lora_rank"] > 0:
            apply_lora(self.sam_mask_decoder.transformer, rank=options["lora_rank"],
                       alpha=options["lora_alpha"], dropout=options["lora_dropout"])

    @property
    def low_res_size(self) -> int:
        """Side of the low-resolution logits (S / 4; 256 for 1024-px models)."""
        return self.sam_image_embedding_size * 4

    # ----------------------------------------------------------------------------- granularity
    @contextmanager
    def granularity_prompt(self, granularity: float | Tensor | None) -> Iterator[None]:
        """Within the block, every SAM-2 prompt encoding gets the granularity token for g.

        This is how g reaches SAM-2's own code paths (the video predictor's
        ``add_new_points_or_box`` / ``propagate_in_video``). g: a float, a 0-d tensor, or a
        (B,) tensor matching the prompt batch. ``None`` means no granularity token.
        """
        encoder = self.sam_prompt_encoder
        previous = encoder._active_granularity
        value = None if granularity is None else torch.as_tensor(
            granularity, dtype=torch.float32, device=self.device)
        encoder.use_granularity(value)
        try:
            yield
        finally:
            encoder.use_granularity(previous)

    def _use_mask_as_output(self, backbone_features: Tensor, high_res_features: Any,
                            mask_inputs: Tensor) -> Any:
        # The reference feeds no granularity when a mask (not clicks) is the input on a frame.
        with self.granularity_prompt(None):
            return super()._use_mask_as_output(backbone_features, high_res_features, mask_inputs)

    # ----------------------------------------------------------------------------- training API
    def encode_image(self, images: Tensor) -> ImageFeatures:
        """Image encoder: images (B, 3, S, S) float, normalised with SAM-2's ImageNet mean/std.

        Runs SAM-2's trunk + neck, projects the high-res levels for the decoder and adds the
        no-memory embedding (exactly what SAM-2's image predictor does). Differentiable; wrap in
        ``torch.no_grad()`` when the encoder is frozen.
        """
        return encode_sam2_image(self, images)

    def decode(self, features: ImageFeatures, point_coords: Tensor, point_labels: Tensor,
               granularity: Tensor, mask_input: Tensor | None = None, *,
               multimask_iou: bool = False) -> DecoderOutput:
        """Prompt encoder + granularity-aware mask decoder, differentiable.

        features: from :meth:`encode_image` with batch Bi; prompts have batch B, a multiple of Bi
        (prompts for image i are rows i*B/Bi ... (i+1)*B/Bi - 1).
        point_coords: (B, N, 2) float, (x, y) in model-input pixels (0..S).
        point_labels: (B, N) int — 1 positive, 0 negative, -1 padding (ignored point).
        granularity: (B,) float in [0, 1].
        mask_input: (B, 1, S/4, S/4) float logits from a previous step, or None.
        multimask_iou: read the predicted IoU as the max of SAM-2's 3 multimask slots (the
        reference's behaviour when its predictor runs with ``multimask_output=True``).
        """
        batch = point_coords.shape[0]
        _check_prompts(point_coords, point_labels, granularity, mask_input, self.low_res_size)
        image_embed, high_res = features.image_embed, features.high_res
        repeat = image_embed.shape[0] == 1 and batch > 1
        if not repeat and image_embed.shape[0] != batch:
            if batch % image_embed.shape[0]:
                raise ValueError(f"{batch} prompts cannot be split over {image_embed.shape[0]} images")
            per_image = batch // image_embed.shape[0]
            image_embed = image_embed.repeat_interleave(per_image, dim=0)
            if high_res is not None:
                s0, s1 = high_res
                high_res = (s0.repeat_interleave(per_image, dim=0), s1.repeat_interleave(per_image, dim=0))
        sparse, dense = self.sam_prompt_encoder(
            points=(point_coords, point_labels), boxes=None, masks=mask_input,
            granularity=granularity)
        logits, iou, _, object_scores = self.sam_mask_decoder(
            image_embeddings=image_embed, image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask_iou, repeat_image=repeat,
            high_res_features=None if high_res is None else list(high_res))
        return DecoderOutput(logits, iou, object_scores)

    # ----------------------------------------------------------------------------- video
    def init_video_state(self, frames: Sequence[Tensor], video_height: int,
                         video_width: int) -> dict[str, Any]:
        """An inference state for SAM-2's video API from frames already loaded.

        frames: a sequence (list or (T, 3, S, S) tensor; may load lazily on indexing) of
        SAM-2-normalised (3, S, S) float frames; video_height/width: the original frame size.
        SAM-2's ``init_state`` only reads folders of JPEG files named by integers; this keeps the
        same state layout for any frames.
        """
        device = self.device
        state: dict[str, Any] = {
            "images": frames, "num_frames": len(frames), "offload_video_to_cpu": False,
            "offload_state_to_cpu": False, "video_height": int(video_height),
            "video_width": int(video_width), "device": device, "storage_device": device,
            "point_inputs_per_obj": {}, "mask_inputs_per_obj": {}, "cached_features": {},
            "constants": {}, "obj_id_to_idx": {}, "obj_idx_to_id": {}, "obj_ids": [],
            "output_dict_per_obj": {}, "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }
        with torch.inference_mode():
            self._get_image_feature(state, frame_idx=0, batch_size=1)
        return state


def encode_sam2_image(model: Any, images: Tensor) -> ImageFeatures:
    """SAM-2's image encoder as the image predictor runs it, for any ``SAM2Base`` ``model``.

    images (B, 3, S, S) float, SAM-2-normalised, S = ``model.image_size``. Runs the trunk + neck,
    projects the high-res levels for the decoder and adds the no-memory embedding.
    Differentiable; wrap in ``torch.no_grad()`` when the encoder is frozen.
    """
    size = int(model.image_size)
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (size, size):
        raise ValueError(f"images must be (B, 3, {size}, {size}), got {tuple(images.shape)}")
    backbone_out = model.forward_image(images)
    _, vision_feats, _, feat_sizes = model._prepare_backbone_features(backbone_out)
    if model.directly_add_no_mem_embed:
        vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
    batch = images.shape[0]
    maps = [feat.permute(1, 2, 0).reshape(batch, -1, h, w)
            for feat, (h, w) in zip(vision_feats, feat_sizes, strict=True)]
    high_res = (maps[0], maps[1]) if len(maps) == 3 else None
    return ImageFeatures(image_embed=maps[-1], high_res=high_res)


def _check_prompts(point_coords: Tensor, point_labels: Tensor, granularity: Tensor,
                   mask_input: Tensor | None, low_res_size: int) -> None:
    """Shape checks of :meth:`UnSAMv2Model.decode` (ValueError naming the bad argument)."""
    batch = point_coords.shape[0]
    if point_coords.ndim != 3 or point_coords.shape[-1] != 2:
        raise ValueError(f"point_coords must be (B, N, 2), got {tuple(point_coords.shape)}")
    if tuple(point_labels.shape) != tuple(point_coords.shape[:2]):
        raise ValueError(f"point_labels must be (B, N) = {tuple(point_coords.shape[:2])}, "
                         f"got {tuple(point_labels.shape)}")
    if tuple(granularity.shape) != (batch,):
        raise ValueError(f"granularity must be ({batch},), got {tuple(granularity.shape)}")
    if mask_input is not None and tuple(mask_input.shape) != (batch, 1, low_res_size, low_res_size):
        raise ValueError(f"mask_input must be ({batch}, 1, {low_res_size}, {low_res_size}), "
                         f"got {tuple(mask_input.shape)}")
