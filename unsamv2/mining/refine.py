"""Optional mask refinement: an edge-aware colour-guided filter (He et al., 2010) + hole filling.

Stands in for the DenseCRF of CutLER / CascadePSP of the UnSAMv2 release (neither is a maintained,
installable package): the mask is filtered with the image as guide, thresholded at 0.5 and its
holes are filled. The release's drop rules apply (its CascadePSP post-processing): a refinement
whose result covers more than 90 % of the image, or has IoU < 0.5 with its input, fails. Then, as
in the release, an instance keeps its unrefined mask and a part is dropped (:func:`refine_or_drop`).
"""

from __future__ import annotations

from dataclasses import dataclass

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


MAX_REFINED_AREA = 0.9  # the release's max_area_thresh: a refined mask over 90 % of the image fails
MIN_REFINE_IOU = 0.5  # the release's iou_thresh: IoU(input, refined) below this fails


@dataclass(frozen=True)
class GuideStats:
    """What the guided filter needs of the guide alone, for one image and radius, computed once.

    Channel-first: ``guide`` (3, H, W) float64 in [0, 1]; ``mean`` (3, H, W) its window means;
    ``inv_cov`` (3, 3, H, W) the inverse of each window's colour covariance + ``eps`` I.
    """

    radius: int
    eps: float
    guide: np.ndarray
    mean: np.ndarray
    inv_cov: np.ndarray


def default_radius(height: int, width: int) -> int:
    """One divide-grid patch: 1/60 of the long side, at least 2 pixels."""
    return max(2, round(max(height, width) / 60))


def guide_stats(image: np.ndarray, radius: int | None = None, eps: float = 1e-4) -> GuideStats:
    """:class:`GuideStats` of ``image`` (H, W, 3) uint8; ``radius`` defaults to :func:`default_radius`.

    With them each mask costs 8 box filters instead of 17 and no 3x3 solves; the result equals
    filtering the mask's own window up to float rounding (see :func:`refine_or_drop`).
    """
    r = int(radius or default_radius(*image.shape[:2]))
    g = np.ascontiguousarray(np.moveaxis(image.astype(np.float64) / 255.0, -1, 0))
    mean = np.stack([_box(g[c], r) for c in range(3)])
    sigma = np.empty(g.shape[1:] + (3, 3))
    for i in range(3):
        for j in range(i, 3):
            sigma[..., i, j] = sigma[..., j, i] = _box(g[i] * g[j], r) - mean[i] * mean[j]
    inv = np.linalg.inv(sigma + eps * np.eye(3))
    return GuideStats(r, eps, g, mean, np.ascontiguousarray(np.moveaxis(inv, (-2, -1), (0, 1))))


def refine_or_drop(image: np.ndarray, mask: np.ndarray, radius: int | None = None,
                   eps: float = 1e-4, stats: GuideStats | None = None) -> np.ndarray | None:
    """The refined (H, W) bool mask, or None when the refinement fails the release's rules
    (refined area > 90 % of the image, or IoU(mask, refined) < 0.5).

    ``stats`` (from :func:`guide_stats` of the same image, radius and eps) makes it cheaper: the
    filter's window means and inverse covariances are then read, not recomputed. Both paths work
    on the mask's box grown by 3 radii; outside the mask's reach (2 radii) the filtered mask is 0
    either way, so they agree up to float rounding.
    """
    if not mask.any():
        return None
    refined = _guided_refinement(image, mask, radius, eps, stats)
    union = np.count_nonzero(refined | mask)
    if refined.mean() > MAX_REFINED_AREA or union == 0 or np.count_nonzero(refined & mask) / union < MIN_REFINE_IOU:
        return None
    return refined


def refine_mask(
    image: np.ndarray, mask: np.ndarray, radius: int | None = None, eps: float = 1e-4,
    stats: GuideStats | None = None,
) -> np.ndarray:
    """Refined (H, W) bool mask of ``mask`` (H, W) bool on ``image`` (H, W, 3) uint8; the input
    mask itself when the refinement fails (the release's rule for instances)."""
    refined = refine_or_drop(image, mask, radius, eps, stats)
    return mask if refined is None else refined


def _filter_with_stats(stats: GuideStats, src: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    """The guided filter of ``src`` (h, w) float64 on ``window`` of the image, from precomputed stats."""
    r = stats.radius
    g = stats.guide[(slice(None), *window)]
    mean_g = stats.mean[(slice(None), *window)]
    inv = stats.inv_cov[(slice(None), slice(None), *window)]
    mean_p = _box(src, r)
    cov = [_box(g[c] * src, r) - mean_g[c] * mean_p for c in range(3)]
    a = [inv[i, 0] * cov[0] + inv[i, 1] * cov[1] + inv[i, 2] * cov[2] for i in range(3)]
    b = mean_p - a[0] * mean_g[0] - a[1] * mean_g[1] - a[2] * mean_g[2]
    return _box(a[0], r) * g[0] + _box(a[1], r) * g[1] + _box(a[2], r) * g[2] + _box(b, r)


def _guided_refinement(image: np.ndarray, mask: np.ndarray, radius: int | None, eps: float,
                       stats: GuideStats | None = None) -> np.ndarray:
    """Guided filter + hole filling on the mask's box grown by 3 radii; ``radius`` defaults to one
    divide-grid patch (1/60 of the image's long side, at least 2 pixels)."""
    from scipy import ndimage

    h, w = mask.shape
    r = stats.radius if stats is not None else int(radius or default_radius(h, w))
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    y0, y1 = max(0, ys[0] - 3 * r), min(h, ys[-1] + 3 * r + 1)
    x0, x1 = max(0, xs[0] - 3 * r), min(w, xs[-1] + 3 * r + 1)
    if stats is not None:
        src = mask[y0:y1, x0:x1].astype(np.float64)
        filtered = _filter_with_stats(stats, src, (slice(y0, y1), slice(x0, x1)))
    else:
        guide = image[y0:y1, x0:x1].astype(np.float32) / 255.0
        filtered = guided_filter(guide, mask[y0:y1, x0:x1].astype(np.float32), r, eps)
    out = ndimage.binary_fill_holes(filtered > 0.5)
    refined = np.zeros_like(mask)
    refined[y0:y1, x0:x1] = out
    return refined
