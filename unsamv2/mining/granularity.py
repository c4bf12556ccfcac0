"""The granularity score of a mask within its instance group (docs/architecture.md#mining-granularity).

Within one group (an instance's parts plus the instance itself) the smallest mask gets 0.1, the
largest gets 1.0 and the others lie linearly in between in sqrt(area):

    g = 0.1 + 0.9 * (sqrt(A) - sqrt(A_min)) / (sqrt(A_max) - sqrt(A_min))

A group of one mask, or a group whose masks all have the same area, gets 1.0 everywhere. Granularity
is therefore relative to the object, not to the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unsamv2.errors import InputError

G_MIN = 0.1
G_MAX = 1.0


def granularity_scores(areas: Sequence[float] | np.ndarray) -> np.ndarray:
    """Granularity (N,) float64 in [0.1, 1.0] for a group of masks with the given areas (N,) >= 0."""
    a = np.asarray(areas, dtype=np.float64).reshape(-1)
    if a.size == 0:
        return np.zeros(0, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise InputError(f"mask areas must be finite and non-negative, got {a.tolist()}.")
    root = np.sqrt(a)
    lo, hi = root.min(), root.max()
    if hi - lo <= 0.0:
        return np.full(a.shape, G_MAX)
    g = np.clip(G_MIN + (G_MAX - G_MIN) * (root - lo) / (hi - lo), G_MIN, G_MAX)
    g[root == hi] = G_MAX  # exact ends, free of rounding: the largest mask is exactly 1.0
    g[root == lo] = G_MIN
    return g
