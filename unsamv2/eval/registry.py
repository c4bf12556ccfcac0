"""A checkpoint registry: a folder (or ``s3://`` prefix) that training runs write into.

Any complete training checkpoint folder below the registry counts (``.../checkpoints/step-*/``
with its ``_SUCCESS`` marker, as :mod:`unsamv2.train.checkpoint` writes them, e.g. the runs of
the ``mine-and-train`` flow). "Latest" is the one whose marker was written last (file modification
time, or S3 ``LastModified``), ties broken by path.
"""

from __future__ import annotations

from unsamv2.data import storage
from unsamv2.errors import InputError

MARKER = "_SUCCESS"
PATTERNS = ("checkpoints/step-*/" + MARKER, "*/checkpoints/step-*/" + MARKER, "*/*/checkpoints/step-*/" + MARKER)


def list_checkpoints(registry_uri: str) -> list[tuple[float, str]]:
    """(modified time in seconds, checkpoint folder URI) of every complete checkpoint, oldest first."""
    if not storage.exists(registry_uri):
        raise InputError(f"checkpoint registry {registry_uri} does not exist; give the folder training runs write to.")
    fs, _ = storage.filesystem(registry_uri)
    found = set()
    for pattern in PATTERNS:
        found.update(storage.glob(storage.join(registry_uri, pattern)))
    out = []
    for marker in found:
        _, path = storage.filesystem(marker)
        out.append((fs.modified(path).timestamp(), marker[: -len(MARKER) - 1]))
    return sorted(out)


def latest_checkpoint(registry_uri: str) -> str:
    """The most recently completed checkpoint folder in the registry."""
    found = list_checkpoints(registry_uri)
    if not found:
        raise InputError(f"no complete training checkpoint under {registry_uri}; run 'unsamv2 train' or the "
                         "mine-and-train flow with its output in the registry first.")
    return found[-1][1]


SHIPPED = "shipped"


def resolve_checkpoint(checkpoint_uri: str | None, registry_uri: str | None) -> str:
    """``checkpoint_uri`` when given (``"shipped"``: the shipped UnSAMv2, see
    :func:`shipped_checkpoint`; an existing folder without its ``_SUCCESS`` marker is refused
    here, before any work), else the latest checkpoint of ``registry_uri``."""
    if checkpoint_uri == SHIPPED:
        return shipped_checkpoint()
    if checkpoint_uri:
        uri = checkpoint_uri.rstrip("/")
        if storage.exists(uri):
            from unsamv2.train.checkpoint import require_complete

            require_complete(uri)
        return uri
    if registry_uri:
        return latest_checkpoint(registry_uri)
    raise InputError("give a checkpoint (a training checkpoint folder) or a registry to take the latest from.")


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
