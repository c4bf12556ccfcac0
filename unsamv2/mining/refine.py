"""Optional mask refinement: an edge-aware guided filter (He et al., 2010) plus hole filling.

Stands in for the DenseCRF of CutLER / CascadePSP of the UnSAMv2 release (neither is a maintained,
installable package): the mask is filtered with the image as guide, thresholded at 0.5 and its
holes are filled. As in CutLER, a refinement that changes the mask too much (IoU < 0.5 with the
input) is rejected; here the unrefined mask is kept instead of dropping the mask.
"""

from __future__ import annotations

import numpy as np


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.uniform_filter(x, size=2 * radius + 1, mode="nearest")


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Gray-guide guided filter: guide, src (H, W) float -> filtered (H, W) float32."""
    mean_i, mean_p = _box(guide, radius), _box(src, radius)
    cov = _box(guide * src, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return (_box(a, radius) * guide + _box(b, radius)).astype(np.float32)


def refine_mask(
    image: np.ndarray, mask: np.ndarray, radius: int | None = None, eps: float = 1e-3
) -> np.ndarray:
    """Refined (H, W) bool mask of ``mask`` (H, W) bool on ``image`` (H, W, 3) uint8.

    Works on the mask's box grown by 3 radii; ``radius`` defaults to 1% of the image's long side
    (at least 2 pixels).
    """
    from scipy import ndimage

    if not mask.any():
        return mask
    h, w = mask.shape
    r = int(radius or max(2, round(0.01 * max(h, w))))
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    y0, y1 = max(0, ys[0] - 3 * r), min(h, ys[-1] + 3 * r + 1)
    x0, x1 = max(0, xs[0] - 3 * r), min(w, xs[-1] + 3 * r + 1)
    gray = image[y0:y1, x0:x1].astype(np.float32).mean(axis=2) / 255.0
    src = mask[y0:y1, x0:x1].astype(np.float32)
    out = ndimage.binary_fill_holes(guided_filter(gray, src, r, eps) > 0.5)
    refined = np.zeros_like(mask)
    refined[y0:y1, x0:x1] = out
    union = np.count_nonzero(refined | mask)
    if union == 0 or np.count_nonzero(refined & mask) / union < 0.5:
        return mask
    return refined
