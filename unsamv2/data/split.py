"""The train/val split of a mask table (docs/architecture.md#stats): a stable pseudo-random
``val_fraction`` of the image ids is held out, independent of the table's size and order."""

from __future__ import annotations

import hashlib

from unsamv2.errors import InputError

#: Share of a table's ok images held out for validation (``unsamv2 stats``, the ``mine`` flow).
DEFAULT_VAL_FRACTION = 0.1


def split_of(image_id: int, val_fraction: float, seed: int = 0) -> str:
    """'val' for a stable pseudo-random ``val_fraction`` of image ids, else 'train'."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{image_id}".encode(), digest_size=8).digest(), "big")
    return "val" if h / 2**64 < val_fraction else "train"


def check_val_fraction(val_fraction: float) -> float:
    """``val_fraction`` when it lies in [0, 1), else an InputError (the one rule, checked by
    :func:`unsamv2.data.stats.compute_stats` and by the flows before any work)."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must lie in [0, 1), got {val_fraction!r}.")
    return float(val_fraction)
