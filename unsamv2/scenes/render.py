"""Turn a composed scene into pixels: cluttered background, cast shadows, textured and shaded
parts, an image-wide lighting field, optical blur and sensor noise.

Rendering follows the final (pruned) leaf label image, so the picture agrees with the masks pixel
for pixel; blur and noise then soften edges the way a camera does while the masks stay exact.
Working images are (H, W, 3) float32 RGB in [0, 1].
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from unsamv2.scenes import shapes
from unsamv2.scenes.compose import Composition
from unsamv2.scenes.config import SceneConfig
from unsamv2.scenes.textures import random_colour, random_style, render_style, value_noise


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def background(rng: np.random.Generator, size: int, cfg: SceneConfig) -> np.ndarray:
    """One or two textured surfaces (floor and wall, split by a wavy horizon) plus clutter."""
    yy, xx = _grid(size)
    kinds = cfg.texture_kinds
    canvas = render_style(random_style(rng, kinds, random_colour(rng, muted=True), 0.6 * cfg.texture_contrast, size), yy, xx, rng)
    if rng.random() < 0.6:
        horizon = size * rng.uniform(0.25, 0.75) + size * rng.uniform(0, 0.05) * np.sin(xx * rng.uniform(0.005, 0.03) + rng.uniform(0, 6.3))
        floor = yy > horizon
        style = random_style(rng, kinds, random_colour(rng, muted=rng.random() < 0.6), 0.6 * cfg.texture_contrast, size)
        canvas[floor] = render_style(style, yy[floor], xx[floor], rng)
    n_clutter = int(rng.poisson(cfg.clutter * size * size / 512**2))
    for _ in range(n_clutter):
        _paint_clutter(rng, canvas, cfg)
    return canvas


def _paint_clutter(rng: np.random.Generator, canvas: np.ndarray, cfg: SceneConfig) -> None:
    """One unannotated distractor: a small textured shape or a stroke, partly transparent."""
    size = canvas.shape[0]
    radius = size * float(np.exp(rng.uniform(np.log(0.008), np.log(0.07))))
    cy, cx = rng.uniform(0, size, 2)
    half = int(np.ceil(radius * 2.5)) + 1
    y0, x0 = max(int(cy) - half, 0), max(int(cx) - half, 0)
    y1, x1 = min(int(cy) + half + 1, size), min(int(cx) + half + 1, size)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    if rng.random() < 0.3:  # a stroke: cable, crack, twig
        angle, width = rng.uniform(0, np.pi), rng.uniform(0.6, 2.5)
        d = (radius * 2.2 * np.cos(angle), radius * 2.2 * np.sin(angle))
        mask = shapes.capsule(yy - cy, xx - cx, (-d[0], -d[1]), d, width, width)
    else:
        mask = shapes.random_shape(rng, yy - cy, xx - cx, radius * rng.uniform(0.4, 1.0), radius)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    ys, xs = ys + y0, xs + x0
    style = random_style(rng, cfg.texture_kinds, random_colour(rng, muted=rng.random() < 0.5), cfg.texture_contrast, 2 * radius)
    alpha = float(rng.uniform(0.35, 1.0))
    colour = render_style(style, ys.astype(np.float32), xs.astype(np.float32), rng)
    canvas[ys, xs] = (1 - alpha) * canvas[ys, xs] + alpha * colour


def _object_shade(mask: np.ndarray, radius: float, light: float, strength: float) -> np.ndarray:
    """(h, w) float32 multiplier: darker towards the silhouette's rim and on the side away from the light."""
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    rim = np.exp(-depth / (0.15 * radius + 1.0))
    h, w = mask.shape
    yy, xx = np.ogrid[0:h, 0:w]
    towards = ((xx - w / 2) * np.cos(light) + (yy - h / 2) * np.sin(light)) / max(h, w)
    return ((1 - 0.6 * strength * rim) * (1 + 0.6 * strength * towards)).astype(np.float32)


def _cast_shadow(canvas: np.ndarray, mask: np.ndarray, top: int, left: int, radius: float, light: float, strength: float) -> None:
    """Darken ``canvas`` under a soft copy of ``mask`` moved away from the light."""
    size = canvas.shape[0]
    shift = 0.12 * radius
    dy, dx = -shift * np.sin(light), -shift * np.cos(light)
    pad = int(np.ceil(0.25 * radius)) + 2
    soft = ndimage.gaussian_filter(np.pad(mask.astype(np.float32), pad), sigma=0.08 * radius + 0.5)
    y0, x0 = top - pad + int(round(dy)), left - pad + int(round(dx))
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + soft.shape[0], size), min(x0 + soft.shape[1], size)
    if sy0 >= sy1 or sx0 >= sx1:
        return
    patch = soft[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    canvas[sy0:sy1, sx0:sx1] *= (1 - strength * patch)[..., None]


def paint_objects(rng: np.random.Generator, canvas: np.ndarray, comp: Composition, cfg: SceneConfig, light: float) -> None:
    """Shadows, then every visible leaf's texture times its object's shading, back to front."""
    flat = comp.labels.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=len(comp.styles) + 1))])
    pixels = canvas.reshape(-1, 3)
    size = canvas.shape[0]
    for placed, root in zip(comp.placed, comp.roots, strict=True):
        model = placed.model
        if cfg.shadows > 0:
            _cast_shadow(canvas, model.mask, placed.top, placed.left, model.radius, light, cfg.shadows)
        shade = _object_shade(model.mask, model.radius, light, cfg.shading)
        for leaf in range(root, root + len(model.parents)):
            idx = order[starts[leaf + 1] : starts[leaf + 2]]
            if idx.size == 0:
                continue
            ys, xs = idx // size, idx % size
            colour = render_style(comp.styles[leaf], ys.astype(np.float32), xs.astype(np.float32), rng)
            pixels[idx] = colour * shade[ys - placed.top, xs - placed.left, None]


def finish(rng: np.random.Generator, canvas: np.ndarray, cfg: SceneConfig, light: float) -> np.ndarray:
    """Lighting gradient, vignette and colour cast, blur, sensor noise; returns (H, W, 3) uint8."""
    size = canvas.shape[0]
    yy, xx = _grid(size)
    blotches = value_noise(yy, xx, size / 3, int(rng.integers(2**31)), 2) - 0.5
    y, x = ((g.astype(np.float32) - size / 2) / (size / 2) for g in np.ogrid[0:size, 0:size])
    ramp = x * float(np.cos(light)) + y * float(np.sin(light))
    vignette = 0.5 * (x * x + y * y)
    field = 1 + cfg.lighting * (0.5 * ramp + 0.6 * blotches - 0.5 * vignette)
    cast = 1 + rng.normal(0, 0.05 * cfg.lighting, 3).astype(np.float32)
    out = canvas * field[..., None] * cast
    if cfg.blur_sigma > 0:
        out = ndimage.gaussian_filter(out, sigma=(cfg.blur_sigma, cfg.blur_sigma, 0))
    if cfg.pixel_noise > 0:
        out = out + np.float32(cfg.pixel_noise) * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
