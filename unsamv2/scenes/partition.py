"""Split a region into cells that tile it exactly: the parts of an object, the sub-parts of a part.

Each method assigns every pixel of the region to one of ``k`` cells, so the union of the cells is
the region and the cells are disjoint by construction. Methods: parallel (slightly wavy) bands
along the region's main axis, weighted Voronoi cells, concentric rings (core and rims), angular
sectors, a rotated grid, and spots (small inset shapes plus the surround).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from unsamv2.scenes import shapes


def _principal_angle(ys: np.ndarray, xs: np.ndarray) -> float:
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    vals, vecs = np.linalg.eigh(cov)
    major = vecs[:, int(np.argmax(vals))]
    return float(np.arctan2(major[1], major[0]))


def _cut(rng: np.random.Generator, t: np.ndarray, k: int) -> np.ndarray:
    """Cell index (0..k-1) of each value of ``t``, cut at random (but not tiny) quantiles."""
    shares = rng.dirichlet(np.full(k, 4.0))
    cuts = np.quantile(t, np.cumsum(shares)[:-1])
    return np.searchsorted(cuts, t, side="right")


def _bands(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, k: int, region: np.ndarray) -> np.ndarray:
    angle = _principal_angle(ys, xs) if rng.random() < 0.7 else float(rng.uniform(0, np.pi))
    dy, dx = ys - ys.mean(), xs - xs.mean()
    t = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    extent = float(np.ptp(t)) + 1.0
    wave = rng.uniform(0, 0.06) * extent * np.sin(across * rng.uniform(0.01, 0.08) + rng.uniform(0, 6.3))
    return _cut(rng, t + wave, k)


def _voronoi(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, k: int, region: np.ndarray) -> np.ndarray:
    pool = rng.choice(ys.size, size=min(ys.size, 8 * k), replace=False)
    chosen = [int(pool[0])]
    dist = (ys[pool] - ys[pool[0]]) ** 2 + (xs[pool] - xs[pool[0]]) ** 2
    for _ in range(k - 1):  # farthest-point seeding keeps cells of comparable size
        nxt = int(pool[int(np.argmax(dist))])
        chosen.append(nxt)
        dist = np.minimum(dist, (ys[pool] - ys[nxt]) ** 2 + (xs[pool] - xs[nxt]) ** 2)
    sy, sx = ys[chosen].astype(np.float32), xs[chosen].astype(np.float32)
    weight = rng.uniform(0.6, 1.5, len(chosen)).astype(np.float32)
    ys, xs = ys.astype(np.float32), xs.astype(np.float32)
    d2 = ((ys[None, :] - sy[:, None]) ** 2 + (xs[None, :] - sx[:, None]) ** 2) * weight[:, None]
    return np.argmin(d2, axis=0)


def _inner_distance(region: np.ndarray) -> np.ndarray:
    return ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]


def _rings(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, k: int, region: np.ndarray) -> np.ndarray:
    depth = _inner_distance(region)[ys, xs]
    return _cut(rng, depth, min(k, 3))


def _sectors(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, k: int, region: np.ndarray) -> np.ndarray:
    cy = ys.mean() + rng.normal(0, 0.1) * np.ptp(ys)
    cx = xs.mean() + rng.normal(0, 0.1) * np.ptp(xs)
    turn = (np.arctan2(ys - cy, xs - cx) - rng.uniform(-np.pi, np.pi)) % (2 * np.pi)
    return _cut(rng, turn, k)


def _grid(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, k: int, region: np.ndarray) -> np.ndarray:
    angle = _principal_angle(ys, xs) + (0.0 if rng.random() < 0.6 else float(rng.uniform(0, np.pi)))
    dy, dx = ys - ys.mean(), xs - xs.mean()
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    cols = 2 if k <= 4 else 3
    rows = max(2, k // cols)
    return _cut(rng, v, rows) * cols + _cut(rng, u, cols)


def _spots(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, k: int, region: np.ndarray) -> np.ndarray:
    depth = _inner_distance(region)[ys, xs]
    cell = np.zeros(ys.size, dtype=np.int64)
    deepest = float(depth.max())
    for spot in range(1, k):
        radius = deepest * rng.uniform(0.25, 0.6)
        candidates = np.flatnonzero(depth >= radius * 1.05)
        if candidates.size == 0:
            break
        c = int(rng.choice(candidates))
        ry, rx = radius * rng.uniform(0.6, 1.0), radius * rng.uniform(0.6, 1.0)
        inside = shapes.ellipse(ys - ys[c], xs - xs[c], ry, rx, float(rng.uniform(0, np.pi)))
        cell[inside] = spot
    return cell


_METHODS = {
    "bands": _bands,
    "voronoi": _voronoi,
    "rings": _rings,
    "sectors": _sectors,
    "grid": _grid,
    "spots": _spots,
}


def partition(
    rng: np.random.Generator, region: np.ndarray, method: str, k: int, min_cell: int, min_thickness: float = 0.0
) -> list[np.ndarray] | None:
    """Split ``region`` (h, w) bool into 2..k disjoint cells tiling it, by ``method``.

    Returns the cells as (h, w) bool masks (the surround first for ``spots``), or None when the
    split would leave fewer than two cells, a cell smaller than ``min_cell`` pixels, or a cell
    thinner than ``min_thickness`` (the largest distance from a cell pixel to its outside, pixels).
    """
    ys, xs = np.nonzero(region)
    if ys.size < 2 * min_cell or k < 2:
        return None
    cell = _METHODS[method](rng, ys, xs, k, region)
    ids, counts = np.unique(cell, return_counts=True)
    if ids.size < 2 or counts.min() < min_cell:
        return None
    cells = []
    for i in ids:
        mask = np.zeros(region.shape, dtype=bool)
        sel = cell == i
        mask[ys[sel], xs[sel]] = True
        if min_thickness > 0 and _inner_distance(mask).max() < min_thickness:
            return None
        cells.append(mask)
    return cells
