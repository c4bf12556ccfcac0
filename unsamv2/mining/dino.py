"""DINOv2 / DINOv3 backbones loaded from a local path or ``s3://`` URI (never downloaded).

The checkpoint may be a plain state dict (the ``*_pretrain.pth`` files that torch.hub fetches),
a training checkpoint wrapping it (under "teacher", "model" or "state_dict", keys possibly
prefixed by "backbone." or "module."), or a ``.safetensors`` file. It is read with
``torch.load(weights_only=True)`` and loaded *strictly* into :class:`~unsamv2.mining.vit.DinoViT`.

``arch="auto"`` infers the architecture from the tensors (DINOv3 stores the RoPE periods, which
give the head count; DINOv2 does not, so 64-dim heads are assumed, as in every released DINOv2).
A named ``arch`` (see :data:`NAMED_ARCHS`) is checked against the checkpoint.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypedDict

import numpy as np

from unsamv2.errors import InputError
from unsamv2.mining.features import check_rgb, resize_to_grid
from unsamv2.mining.vit import DinoViT, ViTSpec

#: Input normalisations (mean, std per RGB channel): ImageNet for every web-image checkpoint, and the
#: one DINOv3's satellite (SAT-493M) checkpoints were trained with.
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "sat493m": ((0.430, 0.411, 0.296), (0.213, 0.156, 0.143)),
}
#: What the hub's ``*_reg`` DINOv2 models set (the others keep ViTSpec's defaults: offset 0.1, no antialias).
class _Interpolation(TypedDict, total=False):
    """The position-embedding resize fields of :class:`ViTSpec` that differ for DINOv2 with registers."""

    interpolate_antialias: bool
    interpolate_offset: float


_REG_INTERPOLATION: _Interpolation = {"interpolate_antialias": True, "interpolate_offset": 0.0}


def _v2(dim: int, depth: int, heads: int, swiglu: bool = False, registers: int = 0) -> ViTSpec:
    hidden = ((int(4 * dim * 2 / 3) + 7) // 8 * 8) if swiglu else 4 * dim
    return ViTSpec("dinov2", dim, depth, heads, 14, "swiglu" if swiglu else "mlp", hidden,
                   registers, pos_grid=37, norm_eps=1e-6)


def _v3(dim: int, depth: int, heads: int, ratio: float = 4.0, swiglu: bool = False,
        align: int = 8, local_cls_norm: bool = False) -> ViTSpec:
    hidden = int(dim * ratio)
    if swiglu:
        d = int(hidden * 2 / 3)
        hidden = d + (-d % align)
    return ViTSpec("dinov3", dim, depth, heads, 16, "swiglu" if swiglu else "mlp", hidden, 4,
                   pos_grid=0, mask_k_bias=True, norm_eps=1e-5, local_cls_norm=local_cls_norm)


#: The released architectures, by family and short name.
NAMED_ARCHS: dict[str, dict[str, ViTSpec]] = {
    "dinov2": {
        **{name: spec for name, spec in {
            "vits14": _v2(384, 12, 6), "vitb14": _v2(768, 12, 12), "vitl14": _v2(1024, 24, 16),
            "vitg14": _v2(1536, 40, 24, swiglu=True)}.items()},
        **{f"{name}_reg": replace(spec, registers=4, **_REG_INTERPOLATION) for name, spec in {
            "vits14": _v2(384, 12, 6), "vitb14": _v2(768, 12, 12), "vitl14": _v2(1024, 24, 16),
            "vitg14": _v2(1536, 40, 24, swiglu=True)}.items()},
    },
    "dinov3": {
        "vits16": _v3(384, 12, 6), "vits16plus": _v3(384, 12, 6, 6.0, swiglu=True),
        "vitb16": _v3(768, 12, 12), "vitl16": _v3(1024, 24, 16),
        "vitl16plus": _v3(1024, 24, 16, 6.0, swiglu=True),
        "vith16plus": _v3(1280, 32, 20, 6.0, swiglu=True),
        "vit7b16": _v3(4096, 40, 32, 3.0, swiglu=True, align=64, local_cls_norm=True),
    },
}


def read_state_dict(uri: str) -> dict:
    """The tensors of the checkpoint at ``uri`` (local path or s3://), unwrapped and unprefixed."""
    import torch

    from unsamv2.data import storage

    data = storage.read_bytes(uri)
    obj: Any
    try:
        if uri.endswith(".safetensors"):
            from safetensors.torch import load as load_safetensors

            obj = load_safetensors(data)
        else:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a checkpoint"
        raise InputError(
            f"{uri} is not a readable PyTorch or safetensors checkpoint ({type(exc).__name__}); "
            "give the path of a DINOv2/DINOv3 state dict."
        ) from exc
    for key in ("teacher", "model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise InputError(f"{uri} does not hold a state dict of tensors; give a DINO ViT checkpoint.")
    for prefix in ("module.", "backbone.", "_orig_mod."):
        if all(k.startswith(prefix) for k in obj):
            obj = {k[len(prefix):]: v for k, v in obj.items()}
    return dict(obj)


def infer_spec(state: dict, family: str, where: str = "the checkpoint") -> ViTSpec:
    """The :class:`ViTSpec` of a DINO state dict (see the module docstring on head counts)."""
    looks = "dinov3" if "rope_embed.periods" in state else "dinov2" if "pos_embed" in state else None
    if looks is None or "cls_token" not in state or "patch_embed.proj.weight" not in state:
        raise InputError(f"{where} is not a DINOv2/DINOv3 ViT state dict (no cls_token/pos_embed/"
                         "rope_embed); give the backbone's pretrain checkpoint.")
    if looks != family:
        raise InputError(f"{where} holds a {looks} ViT, but the backbone is {family}; "
                         f"set backbone='{looks}'.")
    dim = int(state["cls_token"].shape[-1])
    patch = int(state["patch_embed.proj.weight"].shape[-1])
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    if "blocks.0.mlp.fc1.weight" in state:
        ffn, hidden = "mlp", int(state["blocks.0.mlp.fc1.weight"].shape[0])
    elif "blocks.0.mlp.w12.weight" in state:
        ffn, hidden = "swiglu", int(state["blocks.0.mlp.w12.weight"].shape[0]) // 2
    else:
        ffn, hidden = "swiglu", int(state["blocks.0.mlp.w1.weight"].shape[0])
    if family == "dinov3":
        heads = dim // (4 * int(state["rope_embed.periods"].shape[0]))
        registers = int(state["storage_tokens"].shape[1]) if "storage_tokens" in state else 0
        pos_grid, eps = 0, 1e-5
    else:
        heads = max(1, dim // 64)
        registers = int(state["register_tokens"].shape[1]) if "register_tokens" in state else 0
        pos_grid, eps = int(round((state["pos_embed"].shape[1] - 1) ** 0.5)), 1e-6
    interpolation: _Interpolation = _REG_INTERPOLATION if family == "dinov2" and registers else {}
    return ViTSpec(
        family, dim, depth, heads, patch, ffn, hidden, registers, pos_grid,
        layerscale="blocks.0.ls1.gamma" in state, qkv_bias="blocks.0.attn.qkv.bias" in state,
        proj_bias="blocks.0.attn.proj.bias" in state,
        ffn_bias=any(k.startswith("blocks.0.mlp.") and k.endswith(".bias") for k in state),
        mask_k_bias="blocks.0.attn.qkv.bias_mask" in state, norm_eps=eps,
        cls_norm="cls_norm.weight" in state, local_cls_norm="local_cls_norm.weight" in state,
        **interpolation,
    )


def _rgb(values: Sequence[float]) -> tuple[float, float, float]:
    r, g, b = values
    return (r, g, b)


def build_vit(state: dict, family: str, arch: str = "auto", where: str = "the checkpoint",
              normalization: tuple[tuple[float, ...], tuple[float, ...]] = NORMALIZATIONS["imagenet"]) -> DinoViT:
    """A :class:`DinoViT` with ``state`` loaded strictly; clear errors on any mismatch."""
    inferred = infer_spec(state, family, where)
    if arch == "auto":
        spec = inferred
    else:
        named = NAMED_ARCHS[family]
        if arch not in named:
            raise InputError(f"unknown {family} architecture {arch!r}; use 'auto' or one of {sorted(named)}.")
        spec = replace(named[arch], pos_grid=inferred.pos_grid if family == "dinov2" else 0)
    spec = replace(spec, mean=_rgb(normalization[0]), std=_rgb(normalization[1]))
    model = DinoViT(spec)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = [f"missing {k}" for k in expected if k not in state][:3]
    problems += [f"unexpected {k}" for k in state if k not in expected][:3]
    problems += [
        f"{k} is {tuple(state[k].shape)}, expected {shape}"
        for k, shape in expected.items() if k in state and tuple(state[k].shape) != shape
    ][:3]
    if problems:
        raise InputError(f"{where} does not match the {family} {arch} architecture "
                         f"({'; '.join(problems)}); pass backbone_arch='auto' or the right name.")
    model.load_state_dict(state, strict=True)
    return model.eval()


class DinoBackbone:
    """A DINO ViT as a :class:`~unsamv2.mining.features.FeatureBackbone` (final normed patch tokens)."""

    def __init__(self, model: DinoViT, device: str = "cpu") -> None:
        """``model``'s spec carries the input normalisation (``mean``/``std``)."""
        self.model = model.to(device)
        self.device = device
        self.name = model.spec.family
        self.patch_size = model.spec.patch_size

    def features(self, image: np.ndarray, long_side: int) -> np.ndarray:
        """(h, w, D) float32 patch tokens of ``image`` (H, W, 3) uint8 resized to ``long_side``."""
        import torch

        rgb = resize_to_grid(check_rgb(image, min_side=1), long_side, self.patch_size)
        x = torch.from_numpy(np.array(rgb)).to(self.device, torch.float32).permute(2, 0, 1)[None] / 255.0
        mean = torch.tensor(self.model.spec.mean, device=self.device)[:, None, None]
        std = torch.tensor(self.model.spec.std, device=self.device)[:, None, None]
        with torch.inference_mode():
            tokens = self.model.patch_tokens((x - mean) / std)[0]
        return tokens.float().cpu().numpy()


def load_dino_backbone(
    family: str, weights: str, arch: str = "auto", device: str = "cpu", patch_size: int | None = None,
    normalization: str = "imagenet",
) -> DinoBackbone:
    """Load a DINOv2/DINOv3 backbone from ``weights`` (local path or s3:// URI); ``normalization``
    names the input mean/std (:data:`NORMALIZATIONS`: "imagenet", or "sat493m" for DINOv3's
    satellite checkpoints)."""
    if family not in NAMED_ARCHS:
        raise InputError(f"unknown DINO family {family!r}; use 'dinov2' or 'dinov3'.")
    if normalization not in NORMALIZATIONS:
        raise InputError(f"unknown normalization {normalization!r}; use one of {sorted(NORMALIZATIONS)}.")
    model = build_vit(read_state_dict(weights), family, arch, where=weights,
                      normalization=NORMALIZATIONS[normalization])
    if patch_size is not None and patch_size != model.spec.patch_size:
        raise InputError(f"patch_size={patch_size} but {weights} has {model.spec.patch_size}-pixel "
                         "patches; leave patch_size unset for DINO backbones.")
    return DinoBackbone(model, device)
