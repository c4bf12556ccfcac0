"""Optional mask refinement: an edge-aware colour-guided filter (He et al., 2010) + hole filling.

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
    """Colour-guided filter: guide (H, W, 3) float, src (H, W) float -> filtered (H, W) float32.

    Per window, src is fitted as a linear function of the three guide channels (ridge ``eps``);
    the averaged coefficients are applied to the guide (He et al., 2010, colour version).
    """
    g = guide.astype(np.float64)
    p = src.astype(np.float64)
    mean_g = np.stack([_box(g[..., c], radius) for c in range(3)], -1)
    mean_p = _box(p, radius)
    cov_gp = np.stack([_box(g[..., c] * p, radius) for c in range(3)], -1) - mean_g * mean_p[..., None]
    sigma = np.empty(g.shape[:2] + (3, 3))
    for i in range(3):
        for j in range(i, 3):
            v = _box(g[..., i] * g[..., j], radius) - mean_g[..., i] * mean_g[..., j]
            sigma[..., i, j] = sigma[..., j, i] = v
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_gp[..., None])[..., 0]
    b = mean_p - (a * mean_g).sum(-1)
    mean_a = np.stack([_box(a[..., c], radius) for c in range(3)], -1)
    return ((mean_a * g).sum(-1) + _box(b, radius)).astype(np.float32)


def refine_mask(
    image: np.ndarray, mask: np.ndarray, radius: int | None = None, eps: float = 1e-4
) -> np.ndarray:
    """Refined (H, W) bool mask of ``mask`` (H, W) bool on ``image`` (H, W, 3) uint8.

    Works on the mask's box grown by 3 radii; ``radius`` defaults to one divide-grid patch
    (1/60 of the image's long side, at least 2 pixels), the scale of the blockiness to remove.
    """
    from scipy import ndimage

    if not mask.any():
        return mask
    h, w = mask.shape
    r = int(radius or max(2, round(max(h, w) / 60)))
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    y0, y1 = max(0, ys[0] - 3 * r), min(h, ys[-1] + 3 * r + 1)
    x0, x1 = max(0, xs[0] - 3 * r), min(w, xs[-1] + 3 * r + 1)
    guide = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    src = mask[y0:y1, x0:x1].astype(np.float32)
    out = ndimage.binary_fill_holes(guided_filter(guide, src, r, eps) > 0.5)
    refined = np.zeros_like(mask)
    refined[y0:y1, x0:x1] = out
    union = np.count_nonzero(refined | mask)
    if union == 0 or np.count_nonzero(refined & mask) / union < 0.5:
        return mask
    return refined
