"""A ViT that loads the official DINOv2 and DINOv3 checkpoints strictly (same parameter names).

Only the inference path that mining needs is implemented: patch tokens after the final norm
("x_norm_patchtokens") for an image batch. Names, shapes and numerics follow the released
models: DINOv2 (learned position embedding bicubic-resized: without registers by a scale factor with
the 0.1 offset, with registers to the exact grid size with antialiasing, as the hub's ``*_reg``
models; optional register tokens, LayerScale, MLP or fused SwiGLU) and DINOv3 (axial RoPE with the stored periods,
storage tokens, masked k-bias, LayerScale, MLP or SwiGLU, optional untied cls norms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ViTSpec:
    """Architecture of a DINO ViT; see :data:`unsamv2.mining.dino.NAMED_ARCHS` for real ones."""

    family: str  # "dinov2" | "dinov3"
    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    ffn: str = "mlp"  # "mlp" | "swiglu"
    ffn_hidden: int = 0  # hidden width of fc1 (mlp) or of one SwiGLU branch
    registers: int = 0  # DINOv2 register_tokens / DINOv3 storage_tokens
    pos_grid: int = 37  # DINOv2 only: side of the learned position-embedding grid
    layerscale: bool = True
    qkv_bias: bool = True
    proj_bias: bool = True
    ffn_bias: bool = True
    mask_k_bias: bool = False  # DINOv3: qkv.bias_mask buffer
    norm_eps: float = 1e-6
    cls_norm: bool = False  # DINOv3: untied cls/storage norm
    local_cls_norm: bool = False  # DINOv3: untied local-crop cls norm (unused at inference)
    interpolate_antialias: bool = False  # DINOv2: antialiased bicubic resize of the position embedding
    interpolate_offset: float = 0.1  # DINOv2: scale factor (grid + offset) / M; 0.0 = resize to the exact grid
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # input normalisation (ImageNet by default)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


class PatchEmbed(nn.Module):
    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, spec.embed_dim, spec.patch_size, spec.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, h*w, D)
        return self.proj(x).flatten(2).transpose(1, 2)


class QKV(nn.Linear):
    """qkv projection; with ``mask_k_bias`` the k part of the bias is masked by a stored buffer."""

    def __init__(self, dim: int, bias: bool, mask_k_bias: bool) -> None:
        super().__init__(dim, 3 * dim, bias=bias)
        if mask_k_bias and bias:
            self.register_buffer("bias_mask", torch.ones(3 * dim))
        else:
            self.bias_mask = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias if self.bias_mask is None else self.bias * self.bias_mask.to(self.bias.dtype)
        return F.linear(x, self.weight, bias)


class Attention(nn.Module):
    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.num_heads = spec.num_heads
        self.qkv = QKV(spec.embed_dim, spec.qkv_bias, spec.mask_k_bias)
        self.proj = nn.Linear(spec.embed_dim, spec.embed_dim, bias=spec.proj_bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if rope is not None:
            q, k = _apply_rope(q, rope), _apply_rope(k, rope)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


def _apply_rope(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """RoPE on the last rows of x (B, heads, N, hd): the prefix tokens (cls, storage) are left as is."""
    sin, cos = rope
    prefix = x.shape[-2] - sin.shape[-2]
    dtype = x.dtype
    head, tail = x[:, :, :prefix], x[:, :, prefix:].to(sin.dtype)
    a, b = tail.chunk(2, dim=-1)
    rotated = tail * cos + torch.cat([-b, a], dim=-1) * sin
    return torch.cat([head, rotated.to(dtype)], dim=-2)


class Mlp(nn.Module):
    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.fc1 = nn.Linear(spec.embed_dim, spec.ffn_hidden, bias=spec.ffn_bias)
        self.fc2 = nn.Linear(spec.ffn_hidden, spec.embed_dim, bias=spec.ffn_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwiGLU(nn.Module):
    """DINOv2 names the fused gate+value projection ``w12``; DINOv3 splits it into ``w1``/``w2``."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        d, h = spec.embed_dim, spec.ffn_hidden
        self.fused = spec.family == "dinov2"
        if self.fused:
            self.w12 = nn.Linear(d, 2 * h, bias=spec.ffn_bias)
        else:
            self.w1 = nn.Linear(d, h, bias=spec.ffn_bias)
            self.w2 = nn.Linear(d, h, bias=spec.ffn_bias)
        self.w3 = nn.Linear(h, d, bias=spec.ffn_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            x1, x2 = self.w12(x).chunk(2, dim=-1)
        else:
            x1, x2 = self.w1(x), self.w2(x)
        return self.w3(F.silu(x1) * x2)


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        d = spec.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=spec.norm_eps)
        self.attn = Attention(spec)
        self.ls1 = LayerScale(d) if spec.layerscale else nn.Identity()
        self.norm2 = nn.LayerNorm(d, eps=spec.norm_eps)
        self.mlp = SwiGLU(spec) if spec.ffn == "swiglu" else Mlp(spec)
        self.ls2 = LayerScale(d) if spec.layerscale else nn.Identity()

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))


class RopeEmbed(nn.Module):
    """DINOv3 axial RoPE; ``periods`` (head_dim / 4) is a buffer stored in the checkpoint."""

    periods: torch.Tensor

    def __init__(self, spec: ViTSpec, base: float = 100.0) -> None:
        super().__init__()
        quarter = spec.head_dim // 4
        periods = base ** (2 * torch.arange(quarter, dtype=torch.float32) / (spec.head_dim // 2))
        self.register_buffer("periods", periods)

    def forward(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.periods.device
        ch = torch.arange(0.5, h, device=device, dtype=torch.float32) / h
        cw = torch.arange(0.5, w, device=device, dtype=torch.float32) / w
        coords = torch.stack(torch.meshgrid(ch, cw, indexing="ij"), dim=-1).flatten(0, 1) * 2 - 1
        angles = 2 * math.pi * coords[:, :, None] / self.periods.float()[None, None, :]
        angles = angles.flatten(1, 2).tile(2)
        return torch.sin(angles), torch.cos(angles)


class DinoViT(nn.Module):
    """DINOv2 / DINOv3 ViT with the official parameter names; :meth:`patch_tokens` for mining."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.spec = spec
        d = spec.embed_dim
        self.patch_embed = PatchEmbed(spec)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.mask_token = nn.Parameter(torch.zeros(1, d))
        if spec.family == "dinov2":
            self.pos_embed = nn.Parameter(torch.zeros(1, spec.pos_grid**2 + 1, d))
            if spec.registers:
                self.register_tokens = nn.Parameter(torch.zeros(1, spec.registers, d))
        else:
            if spec.registers:
                self.storage_tokens = nn.Parameter(torch.zeros(1, spec.registers, d))
            self.rope_embed = RopeEmbed(spec)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(d, eps=spec.norm_eps)
        if spec.cls_norm:
            self.cls_norm = nn.LayerNorm(d, eps=spec.norm_eps)
        if spec.local_cls_norm:
            self.local_cls_norm = nn.LayerNorm(d, eps=spec.norm_eps)

    def _pos_embed(self, rows: int, cols: int) -> torch.Tensor:
        """DINOv2 position embedding for a rows x cols grid, (1, 1+N, D): bicubic, by the scale factor
        (grid + offset) / M when ``interpolate_offset`` is set, else to the exact size; antialiased
        when ``interpolate_antialias`` (the ``*_reg`` hub models)."""
        pos = self.pos_embed.float()
        m, offset = self.spec.pos_grid, self.spec.interpolate_offset
        if rows == m and cols == m:
            return self.pos_embed
        grid = pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)
        size = {"scale_factor": ((rows + offset) / m, (cols + offset) / m)} if offset else {"size": (rows, cols)}
        grid = F.interpolate(grid, mode="bicubic", antialias=self.spec.interpolate_antialias, **size)
        grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([pos[:, :1], grid], dim=1).to(self.pos_embed.dtype)

    def patch_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised patch tokens (B, h, w, D) of images (B, 3, H, W), H and W multiples of p."""
        b, _, height, width = images.shape
        rows, cols = height // self.spec.patch_size, width // self.spec.patch_size
        x = self.patch_embed(images)
        prefix = [self.cls_token.expand(b, -1, -1)]
        rope = None
        if self.spec.family == "dinov2":
            x = torch.cat(prefix + [x], dim=1) + self._pos_embed(rows, cols)
            if self.spec.registers:
                x = torch.cat([x[:, :1], self.register_tokens.expand(b, -1, -1), x[:, 1:]], dim=1)
        else:
            prefix[0] = prefix[0] + 0 * self.mask_token
            if self.spec.registers:
                prefix.append(self.storage_tokens.expand(b, -1, -1))
            x = torch.cat(prefix + [x], dim=1)
            rope = self.rope_embed(rows, cols)
        for blk in self.blocks:
            x = blk(x, rope)
        tokens = self.norm(x[:, 1 + self.spec.registers :])
        return tokens.reshape(b, rows, cols, -1)
