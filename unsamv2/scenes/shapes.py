"""Vectorised shape rasterisers.

All functions take broadcastable coordinate arrays ``yy`` (rows) and ``xx`` (columns) in pixels,
typically ``np.ogrid`` slices, already relative to the shape's centre unless stated otherwise, and
return a bool mask of the broadcast shape. Angles are radians, counter-clockwise in (x, y).
"""

from __future__ import annotations

import numpy as np

SHAPE_KINDS: tuple[str, ...] = ("ellipse", "rounded_rect", "polygon", "blob")


def _frame(yy: np.ndarray, xx: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = float(np.cos(angle)), float(np.sin(angle))  # Python floats keep float32 inputs float32
    return xx * c + yy * s, -xx * s + yy * c


def ellipse(yy: np.ndarray, xx: np.ndarray, ry: float, rx: float, angle: float = 0.0) -> np.ndarray:
    """Ellipse with semi-axes ``rx`` (along ``angle``) and ``ry``."""
    u, v = _frame(yy, xx, angle)
    u, v = u * (1.0 / rx), v * (1.0 / ry)
    return u * u + v * v <= 1.0


def rounded_rect(yy: np.ndarray, xx: np.ndarray, ry: float, rx: float, angle: float, power: float) -> np.ndarray:
    """Superellipse |u/rx|^p + |v/ry|^p <= 1: a rotated rectangle whose corners round off as p falls."""
    u, v = _frame(yy, xx, angle)
    return np.abs(u / rx) ** power + np.abs(v / ry) ** power <= 1.0


def polygon(yy: np.ndarray, xx: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test; ``vertices`` (K, 2) float in (x, y), same frame as (xx, yy)."""
    yy, xx = np.broadcast_arrays(yy, xx)
    inside = np.zeros(yy.shape, dtype=bool)
    x0, y0 = vertices[-1]
    for x1, y1 in vertices:
        if y0 != y1:
            crosses = (y0 > yy) != (y1 > yy)
            x_at = x0 + (yy - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (xx < x_at)
        x0, y0 = x1, y1
    return inside


def random_polygon(rng: np.random.Generator, ry: float, rx: float, angle: float) -> np.ndarray:
    """Vertices (K, 2) in (x, y) of a random star-shaped polygon with 3-9 corners inside the ellipse."""
    k = int(rng.integers(3, 10))
    theta = np.sort(rng.uniform(0, 2 * np.pi, k))
    radius = rng.uniform(0.55 if k > 4 else 0.85, 1.0, k)
    u, v = radius * np.cos(theta) * rx, radius * np.sin(theta) * ry
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([u * c - v * s, u * s + v * c], axis=1)


def blob(yy: np.ndarray, xx: np.ndarray, ry: float, rx: float, angle: float, harmonics: np.ndarray) -> np.ndarray:
    """Ellipse whose radius wobbles: r(phi) = 1 + sum_k a_k cos(k phi + b_k); ``harmonics`` (K, 2)."""
    u, v = _frame(yy, xx, angle)
    un, vn = u / rx, v / ry
    phi = np.arctan2(vn, un)
    radius = np.ones_like(phi)
    for k, (amp, phase) in enumerate(harmonics, start=2):
        radius = radius + amp * np.cos(k * phi + phase)
    return un * un + vn * vn <= radius * radius


def capsule(
    yy: np.ndarray, xx: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], r0: float, r1: float
) -> np.ndarray:
    """Tapered capsule from ``p0`` to ``p1`` ((x, y), same frame) with end radii ``r0`` and ``r1``."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    length2 = max(dx * dx + dy * dy, 1e-9)
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / length2, 0.0, 1.0)
    dist2 = (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2
    radius = r0 + (r1 - r0) * t
    return dist2 <= radius * radius


def random_shape(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, ry: float, rx: float, kinds: tuple[str, ...] = SHAPE_KINDS
) -> np.ndarray:
    """A random shape of one of ``kinds`` with semi-axes about (ry, rx), randomly rotated."""
    kind = str(rng.choice(kinds))
    angle = float(rng.uniform(0, np.pi))
    if kind == "ellipse":
        return ellipse(yy, xx, ry, rx, angle)
    if kind == "rounded_rect":
        return rounded_rect(yy, xx, ry, rx, angle, float(rng.uniform(2.5, 10.0)))
    if kind == "polygon":
        return polygon(yy, xx, random_polygon(rng, ry, rx, angle))
    n_harmonics = int(rng.integers(1, 4))
    harmonics = np.stack(
        [rng.uniform(0.04, 0.22, n_harmonics) / np.arange(1, n_harmonics + 1), rng.uniform(0, 2 * np.pi, n_harmonics)], 1
    )
    return blob(yy, xx, ry, rx, angle, harmonics)
