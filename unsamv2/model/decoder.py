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

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam2_utils import MLP
from torch import Tensor, nn

from unsamv2.model.lora import LoRALinear


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
        if high_res_features is None:
            raise ValueError("this decoder uses high-resolution features; pass them")
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

        # contiguous NCHW (the transposed view is channels-last): mixed layouts in the upscaling's
        # skip additions and GELUs take slow strided paths on CPU, forward and backward
        upscaled = self._upscale(src.transpose(1, 2).reshape(b, c, h, w).contiguous(), high_res_features)
        hyper = self.granularity_mlp(granularity_out)  # (B, C/8)
        _, c_up, h_up, w_up = upscaled.shape
        masks = (hyper[:, None, :] @ upscaled.reshape(b, c_up, h_up * w_up)).reshape(b, 1, h_up, w_up)

        iou_pred = self.iou_prediction_head(iou_token_out)
        if self.pred_obj_scores:
            object_score_logits = self.pred_obj_score_head(hs[:, 0, :])
        else:
            object_score_logits = 10.0 * iou_pred.new_ones(iou_pred.shape[0], 1)
        return masks, iou_pred, granularity_out[:, None, :], object_score_logits


# ----------------------------------------------------------------------------- inference fast path
class DecoderContext(NamedTuple):
    """Per-image tensors of :class:`FastDecoder`, shared by every prompt and g (channel-last).

    N = h * w image tokens in row-major (y, x) order, C channels, H heads of d = C_i / H.
    image: (N, C) image embedding; pe: (N, C) the prompt encoder's dense positional encoding
    (computed once per image, not per decoder call); image_b: (N, C) image + the mask
    embedding's last bias; no_mask: (1, N, C) image + no-mask embedding (the first pass's image
    tokens); k0 (H, d, N) scaled and v0 (H, N, d): layer 0 token-to-image keys and values of
    ``no_mask``; q0 (C_i, N) scaled: layer 0 image-to-token queries of ``no_mask``; s1 (N, 4, C/4)
    and s0 (4N, 4, C/8): the first and second upscaling's biases plus the high-resolution
    features, in sub-pixel layout; hw: (h, w).
    """

    image: Tensor
    pe: Tensor
    image_b: Tensor
    no_mask: Tensor
    k0: Tensor
    v0: Tensor
    q0: Tensor
    s1: Tensor
    s0: Tensor
    hw: tuple[int, int]


class Decoded(NamedTuple):
    """:meth:`FastDecoder.decode` output for B prompts: iou_all (B, 4) the IoU head (slot 0 single
    mask, 1-3 SAM-2's multimask slots); object_score_logits (B, 1); keys (B, N, C) the image
    tokens after the transformer; hyper (B, C/8) the granularity token's hypernetwork output."""

    iou_all: Tensor
    object_score_logits: Tensor
    keys: Tensor
    hyper: Tensor


class _Attn(NamedTuple):
    """Effective (LoRA folded in) projections of a SAM-2 ``Attention``: w* (out, in), b* (out,)."""

    wq: Tensor
    bq: Tensor
    wk: Tensor
    bk: Tensor
    wv: Tensor
    bv: Tensor
    wo: Tensor
    bo: Tensor
    heads: int


def merged_weight(linear: nn.Linear) -> Tensor:
    """A linear layer's effective weight: a LoRA layer's update folded in (as its eval forward)."""
    if isinstance(linear, LoRALinear):
        return linear.weight + (linear.lora_B @ linear.lora_A) * linear.scaling
    return linear.weight


def _attn(module: Any) -> _Attn:
    names = ("q_proj", "k_proj", "v_proj", "out_proj")
    parts = [t for n in names for t in (merged_weight(getattr(module, n)), getattr(module, n).bias)]
    return _Attn._make([*parts, int(module.num_heads)])


def _subpixel(feature: Tensor, levels: int) -> Tensor:
    """(C', 2^L h, 2^L w) -> (N * 4^(L-1), 4, C'): [(y, x, i1, j1, ...), (iL, jL), c] with pixel
    (2^L y + 2^(L-1) i1 + ... + iL, 2^L x + ... + jL), the layout of L stride-2 upscalings."""
    c, height, width = feature.shape
    h, w = height >> levels, width >> levels
    x = feature.reshape(c, h, *([2] * levels), w, *([2] * levels))
    ys, xs = list(range(2, 2 + levels)), list(range(3 + levels, 3 + 2 * levels))
    order = [1, 2 + levels] + [d for pair in zip(ys, xs, strict=True) for d in pair] + [0]
    return x.permute(order).reshape(-1, 4, c)


class FastDecoder:
    """Inference-only prompt encoder + :class:`GranularityMaskDecoder` for many prompts on one
    image: the same function as ``UnSAMv2Model.decode`` (up to float rounding) at a fraction of
    the cost on CPU. Build it after the weights are final (LoRA is folded in at construction);
    eval mode only; call under ``torch.inference_mode()``.

    What it saves, per prompt: layer 0's image-side projections when there is no mask prompt
    (the image tokens are then the same for every prompt: :meth:`context` computes them once);
    the final token-to-image attention for the 2-3 output tokens that are read (object score,
    IoU, granularity) instead of all; the image-side q/k/v/out projections of the other
    attentions, folded into the few prompt tokens (H * T < C_i: fewer multiply-adds, and the
    softmax-invariant key bias dropped); the dense positional encoding (once per image);
    SAM-2's upscaling run channel-last with fused layer norms, and only for the rows asked
    (:meth:`low_res_logits`), e.g. those that pass the IoU filter.
    """

    def __init__(self, prompt_encoder: Any, mask_decoder: Any) -> None:
        if prompt_encoder.training or mask_decoder.training:
            raise ValueError("FastDecoder is for inference: call model.eval() first")
        self.prompt_encoder, self.decoder = prompt_encoder, mask_decoder
        self.image_size = int(prompt_encoder.input_image_size[0])  # S: prompts are in 0..S pixels
        transformer = mask_decoder.transformer
        self.layers = [(_attn(layer.cross_attn_token_to_image), _attn(layer.cross_attn_image_to_token))
                       for layer in transformer.layers]
        self.final = _attn(transformer.final_attn_token_to_image)
        dc1, _, _, dc2, _ = mask_decoder.output_upscaling
        self.w1 = dc1.weight.permute(0, 2, 3, 1).reshape(dc1.in_channels, -1)  # (C, (i, j, c))
        self.w2 = dc2.weight.permute(0, 2, 3, 1).reshape(dc2.in_channels, -1)
        first = 1 if mask_decoder.pred_obj_scores else 0
        self.read = [first, first + 1 + mask_decoder.num_mask_tokens]  # IoU and granularity tokens
        if first:
            self.read.insert(0, 0)

    def context(self, image_embed: Tensor, high_res: Sequence[Tensor] | None) -> DecoderContext:
        """The per-image tensors; image_embed (1, C, h, w), high_res (feat_s0 (1, C/8, 4h, 4w),
        feat_s1 (1, C/4, 2h, 2w)) or None, as in ``ImageFeatures``."""
        if image_embed.shape[0] != 1:
            raise ValueError("FastDecoder.context takes one image")
        _, _, h, w = image_embed.shape
        image = image_embed[0].flatten(1).t().contiguous()
        pe = self.prompt_encoder.get_dense_pe()[0].flatten(1).t().contiguous()
        no_mask = image + self.prompt_encoder.no_mask_embed.weight
        ti, it = self.layers[0]
        heads, scale = ti.heads, (ti.wq.shape[0] // ti.heads) ** -0.5
        k0 = F.linear(no_mask + pe, ti.wk, ti.bk) * scale
        v0 = F.linear(no_mask, ti.wv, ti.bv)
        q0 = F.linear(no_mask + pe, it.wq, it.bq).t() * (it.wq.shape[0] // it.heads) ** -0.5
        dc1, _, _, dc2, _ = self.decoder.output_upscaling
        s1, s0 = dc1.bias.view(1, 1, -1), dc2.bias.view(1, 1, -1)
        if high_res is not None:
            s1, s0 = s1 + _subpixel(high_res[1][0], 1), s0 + _subpixel(high_res[0][0], 2)
        last = self.prompt_encoder.mask_downscaling[-1]
        return DecoderContext(
            image=image, pe=pe, image_b=image + last.bias, no_mask=no_mask[None],
            k0=k0.view(-1, heads, k0.shape[1] // heads).permute(1, 2, 0).contiguous(),
            v0=v0.view(-1, heads, v0.shape[1] // heads).transpose(0, 1).contiguous(),
            q0=q0.contiguous(), s1=s1, s0=s0, hw=(h, w))

    def decode(self, ctx: DecoderContext, point_coords: Tensor, point_labels: Tensor,
               granularity: Tensor, mask_input: Tensor | None = None) -> Decoded:
        """B prompts: point_coords (B, n, 2) (x, y) model-input pixels, point_labels (B, n),
        granularity (B,), mask_input (B, 1, 4h, 4w) low-res logits or None."""
        sparse, _ = self.prompt_encoder(points=(point_coords, point_labels), boxes=None, masks=None,
                                        granularity=granularity)
        batch = sparse.shape[0]
        tokens = torch.cat((self.decoder._output_tokens().expand(batch, -1, -1), sparse), dim=1)
        src = None if mask_input is None else self._mask_tokens(ctx, mask_input)
        hs, keys = self._transformer(ctx, tokens, src)
        dec = self.decoder
        obj = dec.pred_obj_score_head(hs[:, 0]) if dec.pred_obj_scores else hs.new_full((batch, 1), 10.0)
        return Decoded(dec.iou_prediction_head(hs[:, -2]), obj, keys, dec.granularity_mlp(hs[:, -1]))

    def low_res_logits(self, ctx: DecoderContext, decoded: Decoded, rows: Tensor | None = None) -> Tensor:
        """(R, 4h, 4w) mask logits (unclamped) of the chosen rows (index or bool (B,), all if None):
        SAM-2's upscaling (with the high-res features) and the granularity token's dot product.
        On a CPU in chunks of :func:`rows_per_chunk` rows (one row at a time at 64x64 tokens and
        width 256: its 8 MB intermediates stay in the allocator's reused memory)."""
        keys, hyper = decoded.keys, decoded.hyper
        if rows is not None:
            keys, hyper = keys[rows], hyper[rows]
        (h, w), count = ctx.hw, keys.shape[0]
        out = keys.new_empty((count, h, 2, 2, w, 2, 2))
        step = rows_per_chunk(16 * h * w * hyper.shape[-1]) if keys.device.type == "cpu" else max(count, 1)
        for start in range(0, count, step):
            masks = self._upscaled_dot(ctx, keys[start:start + step], hyper[start:start + step])
            out[start:start + step] = masks.view(-1, h, w, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4, 6)
        return out.view(count, 4 * h, 4 * w)

    def _upscaled_dot(self, ctx: DecoderContext, keys: Tensor, hyper: Tensor) -> Tensor:
        """keys (R, N, C), hyper (R, C/8) -> (R, 16 N) logits in (y, x, i1, j1, i2, j2) order."""
        _, ln, act1, _, act2 = self.decoder.output_upscaling
        count, n, _ = keys.shape
        x = torch.matmul(keys, self.w1).view(count, n, 4, -1)
        x += ctx.s1
        x = _activation_(act1, F.layer_norm(x, x.shape[-1:], ln.weight, ln.bias, ln.eps))
        y = torch.matmul(x.view(count, n * 4, -1), self.w2).view(count, n * 4, 4, -1)
        y += ctx.s0
        y = _activation_(act2, y)
        return torch.matmul(y.view(count, n * 16, -1), hyper[:, :, None])[..., 0]

    def _mask_tokens(self, ctx: DecoderContext, mask_input: Tensor) -> Tensor:
        """(B, N, C) image + the mask prompt's dense embedding (its last 1x1 conv as one matmul)."""
        downscaling = self.prompt_encoder.mask_downscaling
        x = downscaling[:-1](mask_input).flatten(2).transpose(1, 2).contiguous()  # (B, N, C_m)
        weight = downscaling[-1].weight.flatten(1).t()
        return torch.baddbmm(ctx.image_b, x, weight.expand(x.shape[0], -1, -1))

    def _transformer(self, ctx: DecoderContext, tokens: Tensor, src: Tensor | None) -> tuple[Tensor, Tensor]:
        """SAM-2's two-way transformer: (read token outputs (B, 2|3, C), image tokens (B, N, C))."""
        transformer = self.decoder.transformer
        queries, keys = tokens, src
        for layer, (ti, it) in zip(transformer.layers, self.layers, strict=True):
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries, k=queries, v=queries)
            else:
                q = queries + tokens
                queries = queries + layer.self_attn(q=q, k=q, v=queries)
            queries = layer.norm1(queries)
            if keys is None:  # no mask prompt, first layer: the image side is shared
                queries = layer.norm2(queries + _token_to_image_shared(ti, queries + tokens, ctx))
                queries = layer.norm3(queries + layer.mlp(queries))
                keys = _image_to_token(it, layer.norm4, ctx.no_mask, None, queries + tokens, queries, ctx.q0)
                continue
            keys_pe = keys + ctx.pe
            queries = layer.norm2(queries + _token_to_image(ti, queries + tokens, keys, keys_pe, ctx.pe))
            queries = layer.norm3(queries + layer.mlp(queries))
            keys = _image_to_token(it, layer.norm4, keys, keys_pe, queries + tokens, queries)
        if keys is None:
            raise ValueError("the transformer has no layers")
        read = (queries + tokens)[:, self.read]
        out = _token_to_image(self.final, read, keys, None, ctx.pe)
        return transformer.norm_final_attn(queries[:, self.read] + out), keys


CPU_CHUNK_ELEMENTS = 1 << 21
"""Elements (float32: 8 MB) of the largest per-row intermediate a CPU chunk may hold."""


def rows_per_chunk(elements_per_row: int, limit: int = CPU_CHUNK_ELEMENTS) -> int:
    """Rows per CPU chunk so that a chunk's (rows, elements_per_row) float32 intermediate stays
    within ``limit`` elements (8 MB, below glibc's 32 MB mmap threshold, so the allocator reuses
    its memory instead of page-faulting it in afresh each call); at least 1."""
    return max(1, limit // max(1, elements_per_row))


def _activation_(act: Any, x: Tensor) -> Tensor:
    """``act(x)``, in place for GELU (no new 8 MB buffer per prompt)."""
    if type(act) is nn.GELU:
        return torch.ops.aten.gelu_(x, approximate=act.approximate)
    return act(x)


def _token_to_image_shared(attn: _Attn, q_tokens: Tensor, ctx: DecoderContext) -> Tensor:
    """Token-to-image attention on the shared layer-0 keys/values of ``ctx``: (B, T, C)."""
    batch, count, _ = q_tokens.shape
    q = F.linear(q_tokens, attn.wq, attn.bq).view(batch, count, attn.heads, -1).transpose(1, 2)
    probs = torch.matmul(q, ctx.k0).softmax(-1)  # (B, H, T, N)
    out = torch.matmul(probs, ctx.v0).transpose(1, 2).reshape(batch, count, -1)
    return F.linear(out, attn.wo, attn.bo)


def _token_to_image(attn: _Attn, q_tokens: Tensor, keys: Tensor, keys_pe: Tensor | None,
                    pe: Tensor) -> Tensor:
    """Token-to-image attention, k/v projections folded into the T queries: (B, T, C).

    keys (B, N, C) image tokens (the values' input), keys_pe = keys + pe or None (then the
    scores are computed as q.keys + q.pe). The key bias adds a constant per query row to the
    scores, which the softmax ignores; rows of the softmax sum to 1, so the value bias is added
    after the weighted sum."""
    batch, count, channels = q_tokens.shape
    heads = attn.heads
    q = F.linear(q_tokens, attn.wq, attn.bq).view(batch, count, heads, -1)
    scale = q.shape[-1] ** -0.5
    qa = torch.einsum("bthd,hdc->bhtc", q, attn.wk.view(heads, -1, channels)).reshape(batch, -1, channels)
    qa = qa * scale
    if keys_pe is not None:
        scores = torch.bmm(qa, keys_pe.transpose(1, 2))
    else:
        scores = torch.baddbmm(torch.matmul(qa, pe.t()), qa, keys.transpose(1, 2))
    weighted = torch.bmm(scores.softmax(-1), keys).view(batch, heads, count, channels)
    out = torch.einsum("bhtc,hdc->bthd", weighted, attn.wv.view(heads, -1, channels))
    return F.linear(out.reshape(batch, count, -1) + attn.bv, attn.wo, attn.bo)


def _image_to_token(attn: _Attn, norm: Any, keys: Tensor, keys_pe: Tensor | None,
                    q_tokens: Tensor, values: Tensor, q_shared: Tensor | None = None) -> Tensor:
    """norm(keys + image-to-token attention): (B, N, C). The image queries' projection is folded
    into the T token keys (or taken from ``q_shared`` (C_i, N), scaled), the output projection
    into the T token values; keys (1 | B, N, C), keys_pe = keys + pe (unused with q_shared).
    Scores are laid out (B, H, T, N): the softmax over T then runs along contiguous N."""
    batch, count, channels = q_tokens.shape
    heads = attn.heads
    k = F.linear(q_tokens, attn.wk, attn.bk).view(batch, count, heads, -1)
    v = F.linear(values, attn.wv, attn.bv).view(batch, count, heads, -1)
    if q_shared is not None:
        eye = torch.eye(heads, dtype=k.dtype, device=k.device)
        blocks = torch.einsum("bthd,hg->bhtgd", k, eye).reshape(batch, heads * count, -1)
        scores = torch.matmul(blocks, q_shared)  # (B, H * T, N)
    elif keys_pe is not None:
        scale = k.shape[-1] ** -0.5
        kb = torch.einsum("hdc,bthd->bhtc", attn.wq.view(heads, -1, channels), k) * scale
        bias = torch.einsum("hd,bthd->bht", attn.bq.view(heads, -1), k) * scale
        scores = torch.baddbmm(bias.reshape(batch, -1, 1), kb.reshape(batch, -1, channels),
                               keys_pe.transpose(1, 2))
    else:
        raise ValueError("give keys_pe or q_shared")
    probs = scores.view(batch, heads, count, -1).softmax(2).view(batch, heads * count, -1)
    # out_proj(concat_h P_h v_h) = sum_h P_h (v_h Wo_h^T); each head's weights sum to 1: bias / H
    u = torch.einsum("bthd,chd->bhtc", v, attn.wo.view(channels, heads, -1)) + attn.bo / heads
    return norm(torch.baddbmm(keys, probs.transpose(1, 2), u.reshape(batch, heads * count, channels)))
