"""The train/val split of a mask table (docs/architecture.md#stats): a stable pseudo-random
``val_fraction`` of the image ids is held out, independent of the table's size and order."""

from __future__ import annotations

import hashlib

#: Share of a table's ok images held out for validation (``unsamv2 stats``, the ``mine`` flow).
DEFAULT_VAL_FRACTION = 0.1


def split_of(image_id: int, val_fraction: float, seed: int = 0) -> str:
    """'val' for a stable pseudo-random ``val_fraction`` of image ids, else 'train'."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{image_id}".encode(), digest_size=8).digest(), "big")
    return "val" if h / 2**64 < val_fraction else "train"
