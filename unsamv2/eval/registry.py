"""A checkpoint registry: a folder (or ``s3://`` prefix) that training runs write into.

Any complete training checkpoint folder below the registry counts (``.../checkpoints/step-*/``
with its ``_SUCCESS`` marker, as :mod:`unsamv2.train.checkpoint` writes them, e.g. the runs of
the ``mine-and-train`` flow). The registry's *newest* checkpoint is the one completed last, by the
completion time its marker records (:func:`unsamv2.train.checkpoint.completed_at`; a marker
without one counts as oldest), ties broken by step number, then path; file modification times are
never used. This is not a run's *latest* checkpoint (:func:`unsamv2.train.checkpoint.latest_checkpoint`:
the highest valid step of one run, what resume continues from): step numbers of different runs
say nothing about which one is newer.
"""

from __future__ import annotations

import posixpath
import re
from datetime import datetime, timezone

from unsamv2.data import storage
from unsamv2.errors import InputError

MARKER = "_SUCCESS"
PATTERNS = ("checkpoints/step-*/" + MARKER, "*/checkpoints/step-*/" + MARKER, "*/*/checkpoints/step-*/" + MARKER)
_UNKNOWN = datetime.min.replace(tzinfo=timezone.utc)
_STEP_NAME = re.compile(r"^step-(\d+)$")


def list_checkpoints(registry_uri: str) -> list[tuple[datetime, int, str]]:
    """(recorded completion time, step, checkpoint folder URI) of every complete checkpoint,
    oldest first (an unknown time sorts first)."""
    from unsamv2.train.checkpoint import completed_at

    if not storage.exists(registry_uri):
        raise InputError(f"checkpoint registry {registry_uri} does not exist; give the folder training runs write to.")
    found = set()
    for pattern in PATTERNS:
        found.update(storage.glob(storage.join(registry_uri, pattern)))
    out = []
    for marker in found:
        folder = marker[: -len(MARKER) - 1]
        match = _STEP_NAME.match(posixpath.basename(folder.rstrip("/")))
        if match is not None:  # a training checkpoint folder, step-N
            out.append((completed_at(folder) or _UNKNOWN, int(match.group(1)), folder))
    return sorted(out)


def newest_checkpoint(registry_uri: str) -> str:
    """The registry's newest checkpoint folder: completed last, by its marker's recorded time."""
    found = list_checkpoints(registry_uri)
    if not found:
        raise InputError(f"no complete training checkpoint under {registry_uri}; run 'unsamv2 train' or the "
                         "mine-and-train flow with its output in the registry first.")
    return found[-1][2]


SHIPPED = "shipped"


def resolve_checkpoint(checkpoint_uri: str | None, registry_uri: str | None) -> str:
    """``checkpoint_uri`` when given (``"shipped"``: the shipped UnSAMv2, see
    :func:`shipped_checkpoint`; an existing folder without its ``_SUCCESS`` marker is refused
    here, before any work), else the newest checkpoint of ``registry_uri``."""
    if checkpoint_uri == SHIPPED:
        return shipped_checkpoint()
    if checkpoint_uri:
        uri = checkpoint_uri.rstrip("/")
        if storage.exists(uri):
            from unsamv2.train.checkpoint import require_complete

            require_complete(uri)
        return uri
    if registry_uri:
        return newest_checkpoint(registry_uri)
    raise InputError("give a checkpoint (a training checkpoint folder) or a registry to take the newest from.")


def shipped_checkpoint(folder: str | None = None) -> str:
    """The shipped UnSAMv2 (the pretrained base plus the shipped adapter) as a checkpoint folder
    that every evaluation entry point reads (``adapter.safetensors``, ``meta.json``,
    ``_SUCCESS``), written under ``folder`` (default: a new temporary folder); returns its path."""
    import json
    import os
    import shutil
    import tempfile

    from unsamv2.model.build import SHIPPED_ADAPTER, config_sha256, shipped_weights
    from unsamv2.train.checkpoint import ADAPTER_FILE, MARKER, META_FILE

    folder = folder or tempfile.mkdtemp(prefix="unsamv2-shipped-")
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(shipped_weights(SHIPPED_ADAPTER), os.path.join(folder, ADAPTER_FILE))
    meta = {"step": 0, "trainable": "adapter", "model_config_sha256": config_sha256("base"),
            "config": {"model_config": "base", "base_checkpoint": None, "objective": "unsamv2"},
            "metrics": {}, "shipped": True}
    with open(os.path.join(folder, META_FILE), "w") as f:
        json.dump(meta, f, indent=1)
    with open(os.path.join(folder, MARKER), "w") as f:
        f.write(json.dumps({"step": 0}))
    return folder
