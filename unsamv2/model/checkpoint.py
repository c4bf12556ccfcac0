"""Checkpoint key layouts and strict loading (docs/architecture.md#model).

Our parameter names are SAM-2's, plus the adapter:

==========================================================  ===========================================
ours                                                        official UnSAMv2 checkpoint
==========================================================  ===========================================
``sam_prompt_encoder.granularity_encoder.type_embedding.*``  ``sam_prompt_encoder.granularity_embedding.*``
``sam_prompt_encoder.granularity_encoder.mlp.{0,3,6}.*``     ``sam_prompt_encoder.fourier_embedder.mlp.mlp.{0,3,6}.*``
``sam_mask_decoder.granularity_token.*``                     ``sam_mask_decoder.gra_token.*``
``sam_mask_decoder.granularity_mlp.layers.{0,1,2}.*``        ``sam_mask_decoder.gra_output_token_mlp.layers.{0,1,2}.*``
``<proj>.weight`` / ``<proj>.bias`` (LoRA-wrapped)           ``<proj>.original_layer.weight`` / ``.bias``
``<proj>.lora_A`` (r, in), ``<proj>.lora_B`` (out, r)        same
==========================================================  ===========================================

A SAM-2.1 checkpoint has exactly our SAM-2 keys, so it loads with the adapter left at its
initialisation (then give an adapter file, or train one).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from unsamv2.data import storage
from unsamv2.errors import InputError

# (official prefix, our prefix)
_RENAMES: tuple[tuple[str, str], ...] = (
    ("sam_prompt_encoder.granularity_embedding.", "sam_prompt_encoder.granularity_encoder.type_embedding."),
    ("sam_prompt_encoder.fourier_embedder.mlp.mlp.", "sam_prompt_encoder.granularity_encoder.mlp."),
    ("sam_mask_decoder.gra_token.", "sam_mask_decoder.granularity_token."),
    ("sam_mask_decoder.gra_output_token_mlp.", "sam_mask_decoder.granularity_mlp."),
)
ADAPTER_PREFIXES: tuple[str, ...] = tuple(ours for _, ours in _RENAMES)
LORA_SUFFIXES = (".lora_A", ".lora_B")
_ORIGINAL = ".original_layer."


def is_adapter_key(name: str) -> bool:
    """True for parameters added by UnSAMv2 (granularity encoder, token, token MLP, LoRA)."""
    return name.startswith(ADAPTER_PREFIXES) or name.endswith(LORA_SUFFIXES)


def is_official_layout(state: Mapping[str, Tensor]) -> bool:
    """True if the state dict uses the official UnSAMv2 release's names."""
    official = tuple(theirs for theirs, _ in _RENAMES)
    return any(_ORIGINAL in k or k.startswith(official) for k in state)


def from_official(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official UnSAMv2 names -> ours (other keys unchanged)."""
    converted = {}
    for key, value in state.items():
        new = key.replace(_ORIGINAL, ".")
        for theirs, ours in _RENAMES:
            if new.startswith(theirs):
                new = ours + new[len(theirs):]
        converted[new] = value
    return converted


def to_official(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our names -> the official UnSAMv2 layout (inverse of :func:`from_official`)."""
    wrapped = {k[: -len(".lora_A")] for k in state if k.endswith(".lora_A")}
    converted = {}
    for key, value in state.items():
        new = key
        for theirs, ours in _RENAMES:
            if new.startswith(ours):
                new = theirs + new[len(ours):]
        stem, _, leaf = new.rpartition(".")
        if leaf in ("weight", "bias") and stem in wrapped:
            new = f"{stem}{_ORIGINAL}{leaf}"
        converted[new] = value
    return converted


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What :func:`load_checkpoint` found: the file's sha256, whether it carried the adapter, and
    whether it was in the official UnSAMv2 layout."""

    sha256: str
    has_adapter: bool
    official_layout: bool


def read_state_dict(uri: str) -> tuple[dict[str, Tensor], str]:
    """Read a ``{"model": state_dict}`` (or bare state dict) checkpoint; returns (state, sha256).

    Local path or s3:// URI; ``torch.load(weights_only=True)``.
    """
    data = storage.read_bytes(uri)
    digest = hashlib.sha256(data).hexdigest()
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise InputError(f"{uri} is not a loadable PyTorch checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]}); give a SAM-2.1 or UnSAMv2 .pt file.") from exc
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputError(f"{uri} holds no state dict (expected {{'model': state_dict}}); "
                         "give a SAM-2.1 or UnSAMv2 checkpoint.")
    return state, digest


def format_names(keys: Iterable[str], limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_state_strict(model: nn.Module, state: Mapping[str, Tensor], source: str,
                      allow_missing_adapter: bool = True) -> bool:
    """Load ``state`` into ``model``; any unexpected key, missing SAM-2 key, partly present
    adapter or shape mismatch raises InputError naming the keys. Returns whether the adapter
    was in ``state``."""
    expected = model.state_dict()
    unexpected = set(state) - set(expected)
    missing = set(expected) - set(state)
    adapter_keys = {k for k in expected if is_adapter_key(k)}
    missing_base = {k for k in missing if not is_adapter_key(k)}
    missing_adapter = missing & adapter_keys
    if unexpected:
        raise InputError(f"{source} has keys this model does not have: {format_names(unexpected)}; "
                         "check that --config matches the checkpoint.")
    if missing_base:
        raise InputError(f"{source} lacks keys of the model: {format_names(missing_base)}; "
                         "check that --config matches the checkpoint.")
    has_adapter = not missing_adapter
    if missing_adapter and (missing_adapter != adapter_keys or not allow_missing_adapter):
        raise InputError(f"{source} lacks adapter keys: {format_names(missing_adapter)}; "
                         "give a complete UnSAMv2 checkpoint or a plain SAM-2.1 one.")
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in state.items()
             if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        raise InputError(f"{source} has tensors of the wrong shape: {format_names(wrong, 4)}; "
                         "check that --config matches the checkpoint.")
    model.load_state_dict(dict(state), strict=False)
    return has_adapter


def load_checkpoint(model: nn.Module, uri: str) -> LoadedCheckpoint:
    """Load a SAM-2.1, official UnSAMv2 or our full checkpoint into ``model`` (strictly)."""
    state, digest = read_state_dict(uri)
    official = is_official_layout(state)
    if official:
        state = from_official(state)
    has_adapter = load_state_strict(model, state, uri)
    return LoadedCheckpoint(sha256=digest, has_adapter=has_adapter, official_layout=official)
