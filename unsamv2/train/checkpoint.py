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
                                                  ({"step": 500, "completed_at": UTC ISO time})
    checkpoints/latest.json                       {"step": 500, "path": "step-000500"}

``state.pt`` holds only tensors, numbers, strings, lists and dicts, and is read with
``torch.load(weights_only=True)``. Older step folders beyond ``keep`` are deleted after a new
one is complete.

Trust: ``latest.json`` names the step folder relative to the ``checkpoints`` folder it sits in
(older files with an absolute path inside that folder still read; a path outside the run is
ignored with a warning), so a run moved or resumed from another working directory finds its own
checkpoints. :func:`latest_checkpoint` returns a run's latest checkpoint: its *valid* folder with
the highest step number
(:func:`checkpoint_problem`: marker, loadable state and weight files, finite weights) and warns
about each newer one it skips. Readers of a single folder (:func:`read_checkpoint`,
:func:`load_trained_model`) refuse one without its ``_SUCCESS`` marker.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import re
from dataclasses import dataclass
from datetime import datetime, timezone
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
LATEST_FILE = "latest.json"
_STEP_NAME = re.compile(r"^step-(\d+)$")


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
    completed = datetime.now(timezone.utc).isoformat()
    storage.write_text(storage.join(uri, MARKER), json.dumps({"step": int(state["step"]), "completed_at": completed}))
    return uri


def completed_at(uri: str) -> datetime | None:
    """When the checkpoint folder ``uri`` was completed, as its ``_SUCCESS`` marker records it (UTC);
    None without a marker or without a recorded time (a marker of an older unsamv2)."""
    marker = storage.join(uri, MARKER)
    if not storage.exists(marker):
        return None
    try:
        value = json.loads(storage.read_text(marker)).get("completed_at")
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, AttributeError):  # not JSON, not an object, not an ISO time
        return None
    return when.replace(tzinfo=timezone.utc) if when is not None and when.tzinfo is None else when


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
    """Point ``latest.json`` at ``uri`` (by its folder name, relative to the checkpoints folder)
    and delete step folders beyond the newest ``keep`` by step number (0 keeps all)."""
    folder = storage.join(output_uri, CHECKPOINTS)
    name = posixpath.basename(uri.rstrip("/"))
    storage.write_text(storage.join(folder, LATEST_FILE), json.dumps({"step": int(step), "path": name}))
    if keep <= 0:
        return
    steps = step_folders(output_uri)
    for old in sorted(steps)[:-keep]:
        if posixpath.basename(steps[old]) != name:
            fs, path = storage.filesystem(steps[old])
            fs.rm(path, recursive=True)


def is_complete(uri: str) -> bool:
    """Whether the checkpoint folder ``uri`` has its ``_SUCCESS`` marker (was written to the end)."""
    return storage.exists(storage.join(uri, MARKER))


def require_complete(uri: str) -> None:
    """Refuse (InputError) a checkpoint folder that does not exist or has no ``_SUCCESS`` marker."""
    if not storage.exists(uri):
        raise InputError(f"{uri} does not exist; give a training checkpoint folder (checkpoints/step-*) "
                         "written by 'unsamv2 train'.")
    if not is_complete(uri):
        raise InputError(f"{uri} has no {MARKER} marker: it is an incomplete checkpoint; point at a complete "
                         "step folder or rerun training.")


def step_folders(output_uri: str) -> dict[int, str]:
    """Every ``checkpoints/step-N`` folder of a run (complete or not) by step number N."""
    folder = storage.join(output_uri, CHECKPOINTS)
    out: dict[int, str] = {}
    for found in storage.glob(storage.join(folder, "step-*")):
        name = posixpath.basename(found.rstrip("/"))
        match = _STEP_NAME.match(name)
        if match:
            out[int(match.group(1))] = storage.join(folder, name)
    return out


def latest_pointer(output_uri: str) -> str | None:
    """The folder ``latest.json`` names, resolved against the run's checkpoints folder; None
    (with a warning) when it is unreadable or points outside that folder."""
    folder = storage.join(output_uri, CHECKPOINTS)
    pointer = storage.join(folder, LATEST_FILE)
    if not storage.exists(pointer):
        return None
    try:
        path = str(json.loads(storage.read_text(pointer))["path"])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: it is not a checkpoint pointer (%s)", pointer, exc)
        return None
    name = _name_inside(folder, path)
    if name is None:
        log.warning("ignoring %s: it points at %s, outside this run's checkpoints folder %s", pointer, path, folder)
        return None
    return storage.join(folder, name)


def _name_inside(folder: str, path: str) -> str | None:
    """The ``step-N`` name when ``path`` is a direct child of ``folder``: a bare folder name (what
    :func:`mark_latest` writes) or an absolute path / URI inside it (older pointers); else None."""
    path = path.rstrip("/")
    if "/" not in path and "\\" not in path:
        name: str | None = path
    elif "://" in path or storage.is_remote(folder):
        name = posixpath.basename(path) if posixpath.dirname(path) == folder.rstrip("/") else None
    elif os.path.isabs(path):
        same = os.path.realpath(os.path.dirname(path)) == os.path.realpath(folder)
        name = os.path.basename(path) if same else None
    else:  # a relative path with folders: relative to some working directory, not to this run
        name = None
    return name if name and _STEP_NAME.match(name) else None


def latest_checkpoint(output_uri: str) -> str | None:
    """A run's latest checkpoint: its valid folder with the highest step number, or None (what
    resume continues from; a registry of runs has a *newest* checkpoint instead, see
    :func:`unsamv2.eval.registry.newest_checkpoint`).

    Candidates are the run's ``step-N`` folders (and the folder ``latest.json`` names); newer ones
    that fail :func:`checkpoint_problem` are skipped with a warning naming them and why."""
    candidates = step_folders(output_uri)
    pointed = latest_pointer(output_uri)
    if pointed is not None:
        match = _STEP_NAME.match(posixpath.basename(pointed))
        if match is not None:  # always: latest_pointer only names step-N folders
            candidates.setdefault(int(match.group(1)), pointed)
    for step in sorted(candidates, reverse=True):
        problem = checkpoint_problem(candidates[step])
        if problem is None:
            return candidates[step]
        log.warning("skipping checkpoint %s: %s; falling back to an earlier one", candidates[step], problem)
    return None


def checkpoint_problem(uri: str) -> str | None:
    """Why the checkpoint folder ``uri`` cannot be trusted, or None when it can: it needs its
    marker, a ``state.pt`` that loads (weights only) with the folder's step, a readable
    ``meta.json`` and weight files that parse and hold finite values."""
    if not is_complete(uri):
        return f"no {MARKER} marker (an incomplete write)"
    try:
        state = torch.load(io.BytesIO(storage.read_bytes(storage.join(uri, STATE_FILE))), map_location="cpu",
                           weights_only=True)
        match = _STEP_NAME.match(posixpath.basename(uri.rstrip("/")))
        if not isinstance(state, dict) or (match and int(state.get("step", -1)) != int(match.group(1))):
            return f"{STATE_FILE} does not hold this folder's step"
        json.loads(storage.read_text(storage.join(uri, META_FILE)))
        return _weights_problem(uri)
    except Exception as exc:  # noqa: BLE001 - any failure to read means: do not resume from here
        return f"{type(exc).__name__}: {str(exc)[:200]}"


def _weights_problem(uri: str) -> str | None:
    """Why the weight files of a checkpoint folder do not load (or hold non-finite values), or None."""
    from safetensors.torch import load

    from unsamv2.model.adapter import check_adapter_values, read_adapter

    found = False
    if storage.exists(storage.join(uri, ADAPTER_FILE)):
        found = True
        tensors, _ = read_adapter(storage.join(uri, ADAPTER_FILE))
        check_adapter_values(storage.join(uri, ADAPTER_FILE), tensors)
    for name in (MODEL_FILE, SAM2_FILE):
        path = storage.join(uri, name)
        if not storage.exists(path):
            continue
        found = True
        data = storage.read_bytes(path)
        tensors = load(data) if name == MODEL_FILE else \
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)["model"]
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            return f"{name} holds non-finite values ({', '.join(sorted(bad)[:4])})"
    return None if found else "no weights file"


def read_checkpoint(uri: str, map_location: str | torch.device = "cpu") -> CheckpointPayload:
    """The state and metadata of a complete checkpoint folder (refused without its marker)."""
    require_complete(uri)
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

    require_complete(uri)
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
