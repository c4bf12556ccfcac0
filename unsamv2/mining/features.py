"""Patch-feature backbones behind one small interface, and the weight-free patch descriptor.

A backbone turns an RGB image into a grid of patch features::

    feats = backbone.features(image, long_side=768)   # (h, w, D) float32, rows = image y

The image is resized (aspect ratio kept) so that its long side is ``long_side`` and both sides are
rounded up to a multiple of ``backbone.patch_size``; patch (i, j) covers pixels
[i*p, (i+1)*p) x [j*p, (j+1)*p) of the resized image.

:class:`PatchDescriptor` is the embedded default: colour statistics in CIE L*a*b*, gradient
orientation energy and blob/texture energy per patch, plus the same statistics pooled over the
3x3 patch neighbourhood, standardised per image and L2-normalised; no weights, no downloads.
DINOv2 / DINOv3 ViTs live in :mod:`unsamv2.mining.dino` (weights from a path or ``s3://`` URI).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np

from unsamv2.errors import InputError

MIN_IMAGE_SIDE = 32


@runtime_checkable
class FeatureBackbone(Protocol):
    """Anything that maps an RGB image to an (h, w, D) grid of patch features."""

    name: str
    patch_size: int

    def features(self, image: np.ndarray, long_side: int) -> np.ndarray:
        """(h, w, D) float32 features of ``image`` (H, W, 3) uint8 resized to ``long_side``."""
        ...


def check_rgb(image: np.ndarray, min_side: int = MIN_IMAGE_SIDE) -> np.ndarray:
    """Return ``image`` as a C-contiguous (H, W, 3) uint8 array, or raise a one-sentence InputError."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(
            f"the image must be an RGB array of shape (H, W, 3), got shape {arr.shape}; "
            "convert grayscale/RGBA images to RGB first."
        )
    if arr.dtype != np.uint8:
        raise InputError(
            f"the image must have dtype uint8 (0..255), got {arr.dtype}; convert it with "
            "np.clip(x, 0, 255).astype(np.uint8)."
        )
    if min(arr.shape[:2]) < min_side:
        raise InputError(
            f"the image is {arr.shape[1]}x{arr.shape[0]} pixels, smaller than the minimum side "
            f"of {min_side}; use a larger image."
        )
    return np.ascontiguousarray(arr)


def grid_shape(height: int, width: int, long_side: int, patch: int) -> tuple[int, int]:
    """Patch grid (h, w) for an image of (height, width) resized to ``long_side``, sides rounded up."""
    scale = long_side / max(height, width)
    gh = max(1, math.ceil(round(height * scale) / patch))
    gw = max(1, math.ceil(round(width * scale) / patch))
    return gh, gw


def resize_to_grid(image: np.ndarray, long_side: int, patch: int) -> np.ndarray:
    """``image`` (H, W, 3) uint8 resized (bicubic) to (h*patch, w*patch, 3), see :func:`grid_shape`."""
    from PIL import Image

    gh, gw = grid_shape(image.shape[0], image.shape[1], long_side, patch)
    size = (gw * patch, gh * patch)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


def _srgb_lut() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=np.float32,
)
_D65 = np.array([0.950456, 1.0, 1.088754], dtype=np.float32)


def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of an (H, W, 3) uint8 sRGB image, (H, W, 3) float32, L in [0, 100]."""
    lin = _srgb_lut()[image]
    xyz = lin @ (_RGB_TO_XYZ / _D65[:, None]).T
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def _block_mean(x: np.ndarray, patch: int) -> np.ndarray:
    """(H, W, C) -> (H/p, W/p, C) means over p x p blocks."""
    h, w = x.shape[0] // patch, x.shape[1] // patch
    return x.reshape(h, patch, w, patch, -1).mean(axis=(1, 3))


def _neighbourhood_mean(x: np.ndarray) -> np.ndarray:
    """(h, w, C) -> mean over each cell's 3x3 neighbourhood (edges replicated)."""
    from scipy import ndimage

    return ndimage.uniform_filter(x, size=(3, 3, 1), mode="nearest")


class PatchDescriptor:
    """Weight-free patch features: the embedded default backbone (see the module docstring).

    Per patch: L*a*b* mean (3) and standard deviation (3); gradient energy of L* in
    ``orientations`` unsigned orientation bins; difference-of-Gaussians energy at two scales (2);
    the colour mean and gradient energy pooled over the 3x3 patch neighbourhood; optionally the
    patch position (y, x) in [-1, 1]. Each statistic is standardised over the image's patches
    (with a floor on the spread so flat images do not amplify noise), groups are weighted, a
    constant component keeps the cosine meaningful for patches close to the image average, and
    every vector is L2-normalised.
    """

    name = "descriptor"

    def __init__(
        self, patch_size: int = 16, orientations: int = 8, position: float = 0.0, bias: float = 0.35
    ) -> None:
        if patch_size < 2:
            raise InputError(f"the descriptor patch size must be >= 2 pixels, got {patch_size}.")
        self.patch_size = int(patch_size)
        self.orientations = int(orientations)
        self.position = float(position)
        self.bias = float(bias)

    def features(self, image: np.ndarray, long_side: int) -> np.ndarray:
        """(h, w, D) float32 L2-normalised descriptors of ``image`` resized to ``long_side``.

        The grid is that of :func:`grid_shape` at ``patch_size``; the statistics are computed on
        cells of ``min(patch_size, source pixels per patch)`` pixels (at least 4), so a small
        image is never upsampled just to be described.
        """
        image = check_rgb(image, min_side=1)  # crops may be thin; Miner checks the input image
        gh, gw = grid_shape(image.shape[0], image.shape[1], long_side, self.patch_size)
        cell = int(np.clip(round(max(image.shape[:2]) / max(gh, gw)), 4, self.patch_size))
        rgb = resize_to_grid(image, max(gh, gw) * cell, cell)
        if rgb.shape[0] // cell != gh or rgb.shape[1] // cell != gw:  # rounding at odd aspects
            from PIL import Image

            rgb = np.asarray(Image.fromarray(image).resize((gw * cell, gh * cell), Image.Resampling.BICUBIC))
        return self.describe(rgb, cell)

    def describe(self, rgb: np.ndarray, cell: int | None = None) -> np.ndarray:
        """Descriptors of an image whose sides are multiples of ``cell`` (default: patch size)."""
        from scipy import ndimage

        p = int(cell or self.patch_size)
        sigma = p / 8.0
        lab = rgb_to_lab(rgb)
        g1 = ndimage.gaussian_filter(lab[..., 0], sigma)
        g2 = ndimage.gaussian_filter(lab[..., 0], 2 * sigma)
        g4 = ndimage.gaussian_filter(lab[..., 0], 4 * sigma)
        gy, gx = np.gradient(g1)
        mag = np.hypot(gx, gy)
        ori = np.floor((np.arctan2(gy, gx) % np.pi) / np.pi * self.orientations)
        ori = np.minimum(ori.astype(np.int64), self.orientations - 1)
        gh, gw = rgb.shape[0] // p, rgb.shape[1] // p
        cell = (np.arange(rgb.shape[0]) // p)[:, None] * gw + (np.arange(rgb.shape[1]) // p)[None, :]
        hist = np.bincount(
            (cell * self.orientations + ori).ravel(), weights=mag.ravel(),
            minlength=gh * gw * self.orientations,
        ).reshape(gh, gw, self.orientations) / (p * p) * (8.0 / p)  # gradients per 8 px, comparable across cell sizes
        blobs = _block_mean(np.stack([np.abs(g1 - g2), np.abs(g2 - g4)], -1), p)
        mean = _block_mean(lab, p)
        std = np.sqrt(np.maximum(_block_mean(lab * lab, p) - mean * mean, 0.0))
        groups = [  # (statistic, spread floor in its units, weight)
            (mean, 3.0, 1.0),
            (std, 2.0, 0.6),
            (np.sqrt(hist), 0.5, 0.45),
            (blobs, 0.5, 0.5),
            (_neighbourhood_mean(mean), 3.0, 0.6),
            (_neighbourhood_mean(np.sqrt(hist)), 0.5, 0.3),
        ]
        parts = []
        for stat, floor, weight in groups:
            flat = stat.reshape(gh * gw, -1).astype(np.float64)
            spread = np.maximum(flat.std(axis=0), floor)
            z = (flat - flat.mean(axis=0)) / spread
            parts.append(weight * z / math.sqrt(z.shape[1]))
        if self.position > 0:
            yy, xx = np.meshgrid(np.linspace(-1, 1, gh), np.linspace(-1, 1, gw), indexing="ij")
            parts.append(self.position * np.stack([yy.ravel(), xx.ravel()], -1))
        parts.append(np.full((gh * gw, 1), self.bias))
        f = np.concatenate(parts, axis=1)
        f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        return f.reshape(gh, gw, -1).astype(np.float32)
