"""Pictures of mined masks: one overlay per granularity band, and grids of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unsamv2.mining.config import MinedMask

#: Granularity bands (low inclusive, high exclusive; the last one includes 1.0).
BANDS: tuple[tuple[float, float], ...] = ((0.1, 0.3), (0.3, 0.55), (0.55, 0.8), (0.8, 1.0))


def band_label(band: tuple[float, float]) -> str:
    """File-name friendly label of a band, e.g. 'g0.10-0.30'."""
    return f"g{band[0]:.2f}-{band[1]:.2f}"


def in_band(g: float, band: tuple[float, float]) -> bool:
    lo, hi = band
    return lo <= g < hi or (hi >= 1.0 and g >= hi)


def _colours(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hue = (np.arange(n) * 0.61803398875 + rng.random()) % 1.0
    sat, val = 0.75, 0.95
    i = np.floor(hue * 6).astype(int) % 6
    f = hue * 6 - np.floor(hue * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    table = np.stack([
        np.select([i == k for k in range(6)], [val, q, p, p, t, val]),
        np.select([i == k for k in range(6)], [t, val, val, q, p, p]),
        np.select([i == k for k in range(6)], [p, p, t, val, val, q]),
    ], axis=1)
    return (table * 255).astype(np.float32)


def overlay(image: np.ndarray, masks: Sequence[np.ndarray], alpha: float = 0.55) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with each mask (H, W) bool tinted in its own colour and outlined.

    Larger masks are drawn first so that smaller ones stay visible on top.
    """
    from scipy import ndimage

    out = image.astype(np.float32) * 0.85
    order = sorted(range(len(masks)), key=lambda i: -int(np.count_nonzero(masks[i])))
    colours = _colours(len(masks))
    for rank, i in enumerate(order):
        m = masks[i]
        out[m] = (1 - alpha) * out[m] + alpha * colours[rank]
        edge = m & ~ndimage.binary_erosion(m)
        out[edge] = 255.0
    return np.clip(out, 0, 255).astype(np.uint8)


def band_overlays(
    image: np.ndarray, mined: Sequence[MinedMask], bands: Sequence[tuple[float, float]] = BANDS
) -> list[tuple[tuple[float, float], np.ndarray, int]]:
    """[(band, overlay image (H, W, 3) uint8, number of masks in the band)] for each band."""
    result = []
    for band in bands:
        chosen = [m.mask for m in mined if in_band(m.granularity, band)]
        result.append((band, overlay(image, chosen), len(chosen)))
    return result


def band_grid(
    rows: Sequence[tuple[str, np.ndarray, Sequence[MinedMask]]],
    tile: int = 192,
    bands: Sequence[tuple[float, float]] = BANDS,
) -> np.ndarray:
    """A picture (uint8 RGB): one row per (name, image, mined masks), columns = image + bands."""
    from PIL import Image, ImageDraw

    pad, head = 4, 18
    cols = 1 + len(bands)
    thumbs: list[tuple[str, list[Image.Image]]] = []
    for name, image, mined in rows:
        pictures = [image] + [ov for _, ov, _ in band_overlays(image, mined, bands)]
        h, w = image.shape[:2]
        size = (max(1, round(w * tile / max(h, w))), max(1, round(h * tile / max(h, w))))
        thumbs.append((name, [Image.fromarray(p).resize(size, Image.Resampling.BILINEAR) for p in pictures]))
    height = head + pad + sum(t[1][0].height + pad for t in thumbs)
    canvas = Image.new("RGB", (cols * (tile + pad) + pad, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    titles = ["image"] + [f"g in [{lo:.2f}, {hi:.2f}{']' if hi >= 1 else ')'}" for lo, hi in bands]
    for c, title in enumerate(titles):
        draw.text((pad + c * (tile + pad) + 4, 3), title, fill=(0, 0, 0))
    y = head + pad
    for name, resized in thumbs:
        for c, thumb in enumerate(resized):
            canvas.paste(thumb, (pad + c * (tile + pad), y))
        draw.text((pad + 4, y + 2), name, fill=(255, 255, 0))
        y += resized[0].height + pad
    return np.asarray(canvas)
