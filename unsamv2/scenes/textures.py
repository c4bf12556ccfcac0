"""Procedural textures evaluated at arbitrary pixel coordinates.

Every function takes pixel-centre coordinates ``ys, xs`` (any equal shapes, float, image frame,
row then column) and returns values of the same shape, or colours of shape ``(*shape, 3)`` float32
in [0, 1] (RGB). Evaluating only the pixels a region owns keeps rendering proportional to the image
area whatever the number of regions.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

from unsamv2.scenes.config import TEXTURE_KINDS


@dataclass(frozen=True)
class Style:
    """How one region looks: a texture ``kind`` mixing ``color_a`` and ``color_b`` (RGB in [0, 1])."""

    kind: str
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    period: float  # pixels: stripe/checker/dot spacing, noise cell size
    angle: float  # radians: orientation of oriented textures
    phase: float  # radians
    sharpness: float  # 1 = soft sinusoid, larger = crisper edges
    grain: float  # std of fine per-pixel grain
    seed: int  # seeds the noise lattices of this style


def hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    """One colour from hue (wraps), saturation and value (clipped to [0, 1])."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return (r, g, b)


def rgb_to_hsv(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    return colorsys.rgb_to_hsv(*rgb)


def value_noise(ys: np.ndarray, xs: np.ndarray, cell: float, seed: int, octaves: int = 2) -> np.ndarray:
    """Smooth fractal value noise in [0, 1] at (ys, xs); ``cell`` is the coarsest lattice spacing (px)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.asarray(ys, np.float32), np.asarray(xs, np.float32)
    out = np.zeros(ys.shape, dtype=np.float32)
    total = 0.0
    for octave in range(octaves):
        step = np.float32(max(cell / (2.0**octave), 1.5))
        gy, gx = ys / step, xs / step
        fy, fx = np.floor(gy), np.floor(gx)
        oy, ox = float(fy.min(initial=0)), float(fx.min(initial=0))
        rows = int(fy.max(initial=0) - oy) + 2
        cols = int(fx.max(initial=0) - ox) + 2
        lattice = rng.random(rows * cols, dtype=np.float32)
        idx = ((fy - oy) * cols + (fx - ox)).astype(np.intp)
        ty, tx = gy - fy, gx - fx
        ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)
        top = lattice.take(idx) * (1 - tx) + lattice.take(idx + 1) * tx
        bottom = lattice.take(idx + cols) * (1 - tx) + lattice.take(idx + cols + 1) * tx
        weight = 0.5**octave
        out += np.float32(weight) * (top * (1 - ty) + bottom * ty)
        total += weight
    return out / np.float32(total)


def _rotated(style: Style, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(style.angle), np.sin(style.angle)
    return xs * c + ys * s, -xs * s + ys * c


def _sharpen(wave: np.ndarray, sharpness: float) -> np.ndarray:
    """Map a wave in [-1, 1] to a mix weight in [0, 1], crisper for larger ``sharpness``."""
    return np.clip(0.5 + 0.5 * wave * sharpness, 0.0, 1.0)


def mix_weight(style: Style, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The weight of ``color_b`` (0..1) at each coordinate for the style's texture kind."""
    u, v = _rotated(style, np.asarray(ys, np.float32), np.asarray(xs, np.float32))
    p, kind = style.period, style.kind
    if kind == "flat":
        return np.zeros(u.shape, np.float32)
    if kind == "noise":
        return np.clip((value_noise(ys, xs, p, style.seed, 3) - 0.5) * style.sharpness + 0.5, 0, 1)
    if kind == "stripes":
        return _sharpen(np.sin(2 * np.pi * u / p + style.phase), style.sharpness)
    if kind == "checker":
        return ((np.floor(u / p) + np.floor(v / p)) % 2).astype(np.float32)
    if kind == "dots":
        du = (u / p + style.phase) % 1.0 - 0.5
        dv = (v / p) % 1.0 - 0.5
        radius = 0.18 + 0.04 * style.sharpness
        return (du * du + dv * dv < radius * radius).astype(np.float32)
    if kind == "wood":
        warp = 5.0 * value_noise(ys, xs, 4 * p, style.seed, 2)
        return _sharpen(np.sin(2 * np.pi * u / p + warp + style.phase), 0.5 * style.sharpness)
    if kind == "gradient":
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / (12 * p) + style.phase).astype(np.float32)
    raise ValueError(f"unknown texture kind {kind!r}; choose one of {TEXTURE_KINDS}")


def render_style(style: Style, ys: np.ndarray, xs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colours (*shape, 3) float32 in [0, 1] of ``style`` at (ys, xs), with fine grain from ``rng``."""
    w = mix_weight(style, ys, xs)[..., None]
    a = np.asarray(style.color_a, np.float32)
    b = np.asarray(style.color_b, np.float32)
    rgb = a * (1 - w) + b * w
    if style.grain > 0:
        rgb = rgb + style.grain * rng.standard_normal(w.shape, dtype=np.float32)
    return np.clip(rgb, 0.0, 1.0)


def random_colour(rng: np.random.Generator, muted: bool = False) -> tuple[float, float, float]:
    """A random RGB colour; ``muted`` gives the low-saturation tones of backgrounds."""
    sat = rng.uniform(0.05, 0.35) if muted else rng.uniform(0.15, 0.95)
    return hsv_to_rgb(rng.random(), sat, rng.uniform(0.25, 0.9))


def shifted_colour(
    rng: np.random.Generator, rgb: tuple[float, float, float], hue: float, sat: float, val: float
) -> tuple[float, float, float]:
    """``rgb`` moved by Gaussian steps of the given sizes in hue, saturation and value."""
    h, s, v = rgb_to_hsv(rgb)
    return hsv_to_rgb(h + rng.normal(0, hue), s + rng.normal(0, sat), v + rng.normal(0, val))


def second_colour(rng: np.random.Generator, rgb: tuple[float, float, float], contrast: float) -> tuple[float, float, float]:
    """The partner colour of a two-colour texture, about ``contrast`` away from ``rgb``."""
    h, s, v = rgb_to_hsv(rgb)
    sign = 1.0 if v < 0.5 else -1.0
    dv = sign * contrast * rng.uniform(0.3, 1.0)
    return hsv_to_rgb(h + rng.normal(0, 0.08 * contrast), s + rng.normal(0, 0.2 * contrast), v + dv)


def random_style(
    rng: np.random.Generator,
    kinds: tuple[str, ...],
    colour: tuple[float, float, float],
    contrast: float,
    size_px: float,
) -> Style:
    """A random texture over ``colour``; its period is scaled to a region of about ``size_px``."""
    return Style(
        kind=str(rng.choice(kinds)),
        color_a=colour,
        color_b=second_colour(rng, colour, contrast),
        period=float(np.clip(size_px * rng.uniform(0.04, 0.18), 3.0, 80.0)),
        angle=float(rng.uniform(0, np.pi)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        sharpness=float(rng.uniform(1.0, 6.0)),
        grain=float(rng.uniform(0.005, 0.04)),
        seed=int(rng.integers(2**31)),
    )


def restyle(rng: np.random.Generator, style: Style, kinds: tuple[str, ...], avoid: set[str]) -> Style:
    """``style`` with a different texture kind (not in ``avoid`` if possible) and a new orientation."""
    options = [k for k in kinds if k not in avoid and k != style.kind] or list(kinds)
    return replace(
        style,
        kind=str(rng.choice(options)),
        angle=float(rng.uniform(0, np.pi)),
        period=float(np.clip(style.period * rng.uniform(0.6, 1.7), 3.0, 80.0)),
        seed=int(rng.integers(2**31)),
    )
