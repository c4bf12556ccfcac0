"""The granularity adapter as data: which parameters train, their state dict, safetensors files.

The adapter is every parameter UnSAMv2 adds to SAM-2 (granularity encoder, granularity token
and its MLP, decoder LoRA). An adapter file is a safetensors file of exactly those tensors (our
names, see :mod:`unsamv2.model.checkpoint`) with string metadata: ``format``
(``unsamv2-adapter``), ``unsamv2_version``, ``base_config``, ``base_checkpoint_sha256``,
``lora_rank``, ``lora_alpha`` plus whatever the caller adds (data version, metrics, ...).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from unsamv2.data import storage
from unsamv2.errors import InputError
from unsamv2.model.checkpoint import format_names, is_adapter_key

FORMAT = "unsamv2-adapter"
log = logging.getLogger(__name__)

# Human-readable groups of adapter parameters, by name prefix / suffix.
_GROUPS: tuple[tuple[str, str], ...] = (
    ("granularity embedding", "sam_prompt_encoder.granularity_encoder.type_embedding."),
    ("granularity MLP", "sam_prompt_encoder.granularity_encoder.mlp."),
    ("granularity token", "sam_mask_decoder.granularity_token."),
    ("granularity token MLP", "sam_mask_decoder.granularity_mlp."),
)


def adapter_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """All adapter parameters of ``model`` by name, whether or not they currently train."""
    return {n: p for n, p in model.named_parameters() if is_adapter_key(n)}


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Parameters with ``requires_grad`` (what an optimizer should get), by name."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def set_trainable(model: nn.Module, mode: Literal["adapter", "full"] = "adapter") -> None:
    """``"adapter"``: only the adapter trains, SAM-2 is frozen (the paper's recipe);
    ``"full"``: every parameter trains."""
    if mode not in ("adapter", "full"):
        raise InputError(f"trainable mode must be 'adapter' or 'full', got {mode!r}.")
    for name, param in model.named_parameters():
        param.requires_grad_(mode == "full" or is_adapter_key(name))


def adapter_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The adapter tensors (detached, contiguous, on CPU), by our names."""
    return {n: p.detach().cpu().contiguous() for n, p in adapter_parameters(model).items()}


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter counts: ``total``, ``trainable``, ``adapter``, ``frozen`` and one entry per
    adapter group (granularity embedding, granularity MLP, granularity token, granularity token
    MLP, LoRA)."""
    params = dict(model.named_parameters())
    counts = {
        "total": sum(p.numel() for p in params.values()),
        "trainable": sum(p.numel() for p in params.values() if p.requires_grad),
        "adapter": sum(p.numel() for n, p in params.items() if is_adapter_key(n)),
    }
    counts["frozen"] = counts["total"] - counts["trainable"]
    for label, prefix in _GROUPS:
        counts[label] = sum(p.numel() for n, p in params.items() if n.startswith(prefix))
    counts["LoRA"] = sum(p.numel() for n, p in params.items() if ".lora_" in n)
    return counts


def _build_metadata(model: nn.Module, extra: Mapping[str, object] | None) -> dict[str, str]:
    from unsamv2 import __version__

    info = getattr(model, "unsamv2_build_info", {}) or {}
    options = getattr(model, "_adapter_options", {}) or {}
    meta = {
        "format": FORMAT,
        "unsamv2_version": __version__,
        "base_config": str(info.get("config", "")),
        "base_checkpoint_sha256": str(info.get("checkpoint_sha256", "")),
        "lora_rank": str(options.get("lora_rank", "")),
        "lora_alpha": str(options.get("lora_alpha", "")),
    }
    for key, value in (extra or {}).items():
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return meta


def save_adapter(path: str, model: nn.Module, metadata: Mapping[str, object] | None = None) -> None:
    """Write the adapter of ``model`` to ``path`` (local or s3://) as safetensors + metadata.

    Non-string metadata values are stored as JSON text.
    """
    from safetensors.torch import save

    tensors = adapter_state_dict(model)
    if not tensors:
        raise InputError("this model has no adapter parameters to save; build it with build_model().")
    storage.write_bytes(path, save(tensors, metadata=_build_metadata(model, metadata)))


def read_adapter(path: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read an adapter file: (tensors by our names, metadata)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    data = storage.read_bytes(path)
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + header_len]).get("__metadata__", {}) or {}
    except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a safetensors adapter file ({exc}); "
                         "give a file written by save_adapter / `unsamv2 train`.") from exc
    if metadata.get("format") != FORMAT:
        raise InputError(f"{path} is a safetensors file but not an unsamv2 adapter "
                         f"(format={metadata.get('format')!r}); give an adapter file.")
    return tensors, metadata


def check_adapter_values(path: str, tensors: Mapping[str, Tensor]) -> None:
    """Refuse (InputError, one sentence) adapter tensors that are not floating point or hold NaN /
    infinite values: such a file would load, then segment to NaN."""
    integral = sorted(n for n, t in tensors.items() if not t.is_floating_point())
    if integral:
        kinds = sorted({str(tensors[n].dtype).replace("torch.", "") for n in integral})
        raise InputError(f"{path} has adapter tensors that are not floating point ({format_names(integral)}: "
                         f"{', '.join(kinds)}); give an adapter file written by save_adapter / 'unsamv2 train'.")
    nonfinite = [n for n, t in tensors.items() if not bool(torch.isfinite(t).all())]
    if nonfinite:
        raise InputError(f"{path} has adapter tensors whose values are not finite (NaN or inf) in "
                         f"{format_names(nonfinite)}; the training that wrote it diverged, so use an earlier "
                         "checkpoint or retrain.")


def load_adapter(model: nn.Module, path: str) -> dict[str, str]:
    """Load an adapter file into ``model`` strictly (every adapter tensor, nothing else, right
    shapes, floating point and finite values: :func:`check_adapter_values`); returns the file's
    metadata. Warns when the file was trained on another base checkpoint than the one the model
    was built from."""
    tensors, metadata = read_adapter(path)
    expected = set(adapter_parameters(model))
    extra = set(tensors) - expected
    if extra:
        raise InputError(f"{path} has tensors that are not adapter parameters of this model: "
                         f"{format_names(extra)}; is it an adapter for another model?")
    missing = expected - set(tensors)
    if missing:
        raise InputError(f"{path} lacks adapter tensors: {format_names(missing)}; "
                         "is it an adapter for another LoRA rank or model?")
    wrong = [n for n, t in tensors.items() if tuple(t.shape) != tuple(model.get_parameter(n).shape)]
    if wrong:
        raise InputError(f"{path} has tensors of the wrong shape: {format_names(wrong)}; "
                         "is it an adapter for another LoRA rank or model?")
    check_adapter_values(path, tensors)
    model.load_state_dict(tensors, strict=False)
    base = getattr(model, "unsamv2_build_info", {}).get("checkpoint_sha256")
    if base and metadata.get("base_checkpoint_sha256") and base != metadata["base_checkpoint_sha256"]:
        log.warning("adapter %s was trained on base checkpoint %s..., this model was built from "
                    "%s...", path, metadata["base_checkpoint_sha256"][:12], base[:12])
    return metadata
