"""Training checkpoints: a folder per step, local or s3://, written atomically (marker last).

Layout under a run's ``output_uri``::

    checkpoints/step-000500/adapter.safetensors   the adapter (unsamv2.model.save_adapter format)
    checkpoints/step-000500/model.safetensors     every weight of the model (``full`` mode only)
    checkpoints/step-000500/sam2.pt               base pretraining (objective ``sam2``): the SAM-2
                                                  weights in the official layout ``{"model": sd}``
                                                  (no adapter file), loadable as a SAM-2.1 checkpoint
    checkpoints/step-000500/state.pt              optimizer, scheduler, RNG states (one entry per
                                                  worker), step, data position, loss history
    checkpoints/step-000500/meta.json             step, config, metrics (human-readable)
    checkpoints/step-000500/_SUCCESS              written last: the folder is complete
    checkpoints/latest.json                       {"step": 500, "path": ".../step-000500"}

``state.pt`` holds only tensors, numbers, strings, lists and dicts, and is read with
``torch.load(weights_only=True)``. Older step folders beyond ``keep`` are deleted after a new
one is complete.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unsamv2.data import storage
from unsamv2.errors import InputError

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
MARKER = "_SUCCESS"
ADAPTER_FILE = "adapter.safetensors"
MODEL_FILE = "model.safetensors"
SAM2_FILE = "sam2.pt"
STATE_FILE = "state.pt"
META_FILE = "meta.json"


def step_dir(output_uri: str, step: int) -> str:
    """The folder of the checkpoint after ``step`` optimizer steps."""
    return storage.join(output_uri, CHECKPOINTS, f"step-{step:06d}")


@dataclass(frozen=True)
class CheckpointPayload:
    """What a checkpoint restores besides the weights."""

    step: int
    state: dict[str, Any]
    meta: dict[str, Any]
    uri: str


def save_checkpoint(uri: str, model: nn.Module, *, full_weights: bool, state: dict[str, Any],
                    meta: dict[str, Any], sam2_layout: bool = False) -> str:
    """Write one checkpoint folder at ``uri`` (marker last); returns ``uri``.

    state: optimizer / scheduler state dicts, ``rng`` (list per worker), ``step``, ``position``,
    ``losses``; meta: JSON-able (``config``, ``metrics`` ...), stored in meta.json and as the
    adapter file's metadata. ``sam2_layout``: ``model`` is a plain SAM-2 (base pretraining):
    its weights go to ``sam2.pt`` as ``{"model": state_dict}`` and there is no adapter file.
    """
    from safetensors.torch import save

    from unsamv2.model.adapter import save_adapter

    storage.makedirs(uri)
    storage.delete(storage.join(uri, MARKER))
    if sam2_layout:
        write_sam2_checkpoint(storage.join(uri, SAM2_FILE), model)
    else:
        save_adapter(storage.join(uri, ADAPTER_FILE), model,
                     metadata={"step": int(state["step"]), "train_config_hash": meta.get("config_hash", ""),
                               "trainable": meta.get("trainable", "")})
    if full_weights and not sam2_layout:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        storage.write_bytes(storage.join(uri, MODEL_FILE), save(tensors, metadata={"format": "unsamv2-model"}))
    buf = io.BytesIO()
    torch.save(state, buf)
    storage.write_bytes(storage.join(uri, STATE_FILE), buf.getvalue())
    storage.write_text(storage.join(uri, META_FILE), json.dumps(meta, indent=1, sort_keys=True))
    storage.write_text(storage.join(uri, MARKER), json.dumps({"step": int(state["step"])}))
    return uri


def write_sam2_checkpoint(uri: str, model: nn.Module, dtype: torch.dtype | None = None) -> None:
    """Write ``model``'s weights as an official-layout SAM-2 checkpoint ``{"model": state_dict}``
    (local or s3://); ``dtype`` casts floating tensors (e.g. float16 to ship a small file)."""
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value
    buf = io.BytesIO()
    torch.save({"model": tensors}, buf)
    storage.write_bytes(uri, buf.getvalue())


def mark_latest(output_uri: str, uri: str, step: int, keep: int) -> None:
    """Point ``latest.json`` at ``uri`` and delete step folders beyond the newest ``keep`` (0 keeps all)."""
    storage.write_text(storage.join(output_uri, CHECKPOINTS, "latest.json"),
                       json.dumps({"step": int(step), "path": uri}))
    if keep <= 0:
        return
    folders = sorted(u for u in storage.glob(storage.join(output_uri, CHECKPOINTS, "step-*"))
                     if not u.endswith(".json"))
    for old in folders[:-keep]:
        if old.rstrip("/") != uri.rstrip("/"):
            fs, path = storage.filesystem(old)
            fs.rm(path, recursive=True)


def is_complete(uri: str) -> bool:
    return storage.exists(storage.join(uri, MARKER))


def latest_checkpoint(output_uri: str) -> str | None:
    """The newest complete checkpoint folder of a run, or None (``latest.json`` first, then a scan)."""
    pointer = storage.join(output_uri, CHECKPOINTS, "latest.json")
    if storage.exists(pointer):
        uri = json.loads(storage.read_text(pointer))["path"]
        if is_complete(uri):
            return uri
    folders = sorted(u for u in storage.glob(storage.join(output_uri, CHECKPOINTS, "step-*")) if is_complete(u))
    return folders[-1] if folders else None


def read_checkpoint(uri: str, map_location: str | torch.device = "cpu") -> CheckpointPayload:
    """The state and metadata of a complete checkpoint folder."""
    if not is_complete(uri):
        raise InputError(f"{uri} is not a complete training checkpoint (no {MARKER}); give a step-* folder "
                         "written by 'unsamv2 train'.")
    state = torch.load(io.BytesIO(storage.read_bytes(storage.join(uri, STATE_FILE))),
                       map_location=map_location, weights_only=True)
    meta = json.loads(storage.read_text(storage.join(uri, META_FILE)))
    return CheckpointPayload(int(state["step"]), state, meta, uri)


def load_weights(model: nn.Module, uri: str) -> None:
    """Load a checkpoint folder's weights into ``model``: every weight when the folder has
    ``model.safetensors`` (``full`` mode), else the adapter (strictly, both ways)."""
    from unsamv2.model.adapter import load_adapter

    sam2 = storage.join(uri, SAM2_FILE)
    if storage.exists(sam2):
        from unsamv2.model.checkpoint import load_state_strict, read_state_dict

        load_state_strict(model, read_state_dict(sam2)[0], sam2, allow_missing_adapter=False)
        return
    full = storage.join(uri, MODEL_FILE)
    if storage.exists(full):
        from safetensors.torch import load

        from unsamv2.model.checkpoint import load_state_strict

        load_state_strict(model, load(storage.read_bytes(full)), full, allow_missing_adapter=False)
    else:
        load_adapter(model, storage.join(uri, ADAPTER_FILE))


def load_trained_model(uri: str, device: str = "cpu") -> Any:
    """The :class:`~unsamv2.model.UnSAMv2Model` of a checkpoint folder (built from the run's
    model config and base checkpoint, then :func:`load_weights`), in eval mode."""
    from unsamv2.model.build import build_model, config_sha256

    meta = json.loads(storage.read_text(storage.join(uri, META_FILE)))
    config = meta["config"]
    recorded = meta.get("model_config_sha256")
    if recorded is not None and recorded != config_sha256(config["model_config"]):
        raise InputError(f"{uri} was trained with another model config than {config['model_config']} holds now "
                         "(sha256 mismatch); restore that config file or retrain.")
    if config.get("objective") == "sam2":  # a pretrained base: its SAM-2 weights, the adapter at its init
        return build_model(config["model_config"], checkpoint=storage.join(uri, SAM2_FILE), device=device)
    model = build_model(config["model_config"], checkpoint=config.get("base_checkpoint"), device="cpu",
                        warn_untrained=False)  # the adapter comes next
    load_weights(model, uri)
    return model.to(device).eval()
