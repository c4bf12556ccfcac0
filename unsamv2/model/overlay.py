"""Pictures of predictions: mask overlays, click markers, labelled strips (numpy + Pillow).

All images are (H, W, 3) uint8 RGB; masks (H, W) bool; points (N, 2) (x, y) pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

MASK_COLOR = (30, 144, 255)
POSITIVE_COLOR = (40, 200, 60)
NEGATIVE_COLOR = (230, 40, 40)


def _edges(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a bool mask (the mask minus its 4-neighbour erosion)."""
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def overlay_masks(image: np.ndarray, masks: Sequence[np.ndarray],
                  colors: Sequence[tuple[int, int, int]] | None = None,
                  alpha: float = 0.5) -> np.ndarray:
    """Blend each mask in its colour over ``image`` and draw its outline in white."""
    out = image.astype(np.float32).copy()
    if colors is None:
        colors = distinct_colors(len(masks))
    for mask, color in zip(masks, colors, strict=True):
        mask = np.asarray(mask, dtype=bool)
        out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, dtype=np.float32)
        out[_edges(mask)] = 255.0
    return np.clip(out, 0, 255).astype(np.uint8)


def distinct_colors(count: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """``count`` saturated colours, reproducible for a seed."""
    import colorsys

    rng = np.random.default_rng(seed)
    hues = (np.arange(count) * 0.618034 + rng.random()) % 1.0
    colors = []
    for h in hues:
        r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
        colors.append((int(255 * r), int(255 * g), int(255 * b)))
    return colors


def draw_points(image: np.ndarray, points: np.ndarray, labels: np.ndarray,
                radius: int | None = None) -> np.ndarray:
    """Filled circles with a white rim: green for positive clicks (1), red for negative (0)."""
    from PIL import Image, ImageDraw

    radius = radius or max(3, round(min(image.shape[:2]) / 60))
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    for (x, y), label in zip(np.asarray(points), np.asarray(labels), strict=True):
        color = POSITIVE_COLOR if label == 1 else NEGATIVE_COLOR
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color,
                     outline=(255, 255, 255), width=max(1, radius // 3))
    return np.asarray(canvas)


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """``image`` with a black title bar above it."""
    from PIL import Image, ImageDraw, ImageFont

    bar = max(18, image.shape[0] // 12)
    canvas = Image.new("RGB", (image.shape[1], image.shape[0] + bar), (0, 0, 0))
    canvas.paste(Image.fromarray(image), (0, bar))
    try:
        font = ImageFont.load_default(size=int(bar * 0.7))
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    ImageDraw.Draw(canvas).text((6, bar * 0.12), title, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def strip(panels: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Panels side by side (same height; narrower ones are padded), separated by white gaps."""
    height = max(p.shape[0] for p in panels)
    parts = []
    for i, panel in enumerate(panels):
        if panel.shape[0] < height:
            pad = np.zeros((height - panel.shape[0], *panel.shape[1:]), dtype=np.uint8)
            panel = np.concatenate([panel, pad])
        if i:
            parts.append(np.full((height, gap, 3), 255, dtype=np.uint8))
        parts.append(panel)
    return np.concatenate(parts, axis=1)


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of an (H, W, 3) uint8 image or an (H, W) bool/uint8 mask (0/255)."""
    from PIL import Image

    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
