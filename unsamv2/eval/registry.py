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


def resolve_checkpoint(checkpoint_uri: str | None, registry_uri: str | None) -> str:
    """``checkpoint_uri`` when given, else the latest checkpoint of ``registry_uri``."""
    if checkpoint_uri:
        return checkpoint_uri.rstrip("/")
    if registry_uri:
        return latest_checkpoint(registry_uri)
    raise InputError("give a checkpoint (a training checkpoint folder) or a registry to take the latest from.")
