"""Qualitative overlays: one object's first click and the masks predicted at several g."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from unsamv2.eval.datasets import EvalSample
from unsamv2.eval.interactive import mask_iou, next_click
from unsamv2.eval.protocols import GranularityPredictor
from unsamv2.eval.report import GalleryItem

GT_COLOUR = np.array([46, 204, 113], dtype=np.float32)  # green
PRED_COLOUR = np.array([52, 152, 219], dtype=np.float32)  # blue


def overlay(image: np.ndarray, mask: np.ndarray, colour: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``mask`` (H, W) bool tinted by ``colour`` and outlined."""
    out = image.astype(np.float32).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * colour
    edge = mask & ~(np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1))
    out[edge] = colour
    return out.clip(0, 255).astype(np.uint8)


def _crop_box(masks: Sequence[np.ndarray], shape: tuple[int, int], margin: float = 0.15) -> tuple[int, int, int, int]:
    union = np.logical_or.reduce([m for m in masks if m.any()] or [np.ones(shape, bool)])
    ys, xs = np.nonzero(union)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = int(max(y1 - y0, x1 - x0) * (1 + 2 * margin)) + 8  # square, so panels line up
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    top, bottom = _span(cy, side, shape[0])
    left, right = _span(cx, side, shape[1])
    return top, bottom, left, right


def _span(centre: int, side: int, limit: int) -> tuple[int, int]:
    """A window of ``side`` pixels around ``centre``, shifted (then clipped) to stay in [0, limit)."""
    lo = max(0, min(centre - side // 2, limit - side))
    return lo, min(limit, lo + side)


def render_panels(image: np.ndarray, gt: np.ndarray, click_xy: tuple[float, float],
                  masks: Sequence[np.ndarray], titles: Sequence[str], ignore: np.ndarray | None = None) -> bytes:
    """PNG bytes: the ground truth, then each mask, cropped around them, with the click marked."""
    from matplotlib.figure import Figure

    y0, y1, x0, x1 = _crop_box([gt, *masks], gt.shape)
    panels = [overlay(image, gt, GT_COLOUR)] + [overlay(image, m, PRED_COLOUR) for m in masks]
    if ignore is not None:
        panels[0][ignore] = (panels[0][ignore] * 0.4).astype(np.uint8)
    fig = Figure(figsize=(2.6 * len(panels), 2.9), dpi=100)
    for i, (panel, title) in enumerate(zip(panels, ["ground truth", *titles], strict=True)):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(panel[y0:y1, x0:x1], extent=(x0 - 0.5, x1 - 0.5, y1 - 0.5, y0 - 0.5), interpolation="nearest")
        ax.plot([click_xy[0]], [click_xy[1]], marker="*", color="#f1c40f", markeredgecolor="black", markersize=14)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def gallery_item(predictor: GranularityPredictor, dataset: str, sample: EvalSample, k: int,
                 granularities: Sequence[float]) -> GalleryItem:
    """The overlay of object ``k`` of ``sample`` (image already embedded in ``predictor``):
    the protocol's first click, and the mask predicted at each of ``granularities``."""
    gt = sample.masks[k]
    x, y, label = next_click(gt, np.zeros_like(gt), ignore=sample.ignore)
    points = np.array([[x, y]], dtype=np.float32)
    masks, pred_iou, _ = predictor.predict(points, np.array([label], dtype=np.int32),
                                           granularity=[float(g) for g in granularities])
    masks = np.asarray(masks).astype(bool)
    titles = [f"g={g:g}: IoU {100 * mask_iou(gt, m, sample.ignore):.0f}%" for g, m in zip(granularities, masks, strict=True)]
    png = render_panels(sample.image, gt, (x, y), list(masks), titles, sample.ignore)
    caption = f"{dataset} image {sample.image_id}, object {sample.ids[k]}: first click, masks at g = " + \
        ", ".join(f"{g:g}" for g in granularities)
    return GalleryItem(dataset, sample.image_id, sample.ids[k], caption, png)


def click_rule_figure(image: np.ndarray, gt: np.ndarray, pred: np.ndarray,
                      ignore: np.ndarray | None = None) -> bytes:
    """PNG bytes explaining one simulated click: ground truth vs prediction, the FN and FP
    distance maps (1-px padded, ignore excluded), and the click the rule places."""
    from matplotlib.figure import Figure
    from scipy.ndimage import distance_transform_edt

    valid = np.ones_like(gt) if ignore is None else ~ignore
    fn, fp = gt & ~pred & valid, pred & ~gt & valid
    maps = [distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1] for m in (fn, fp)]
    x, y, label = next_click(gt, pred, ignore=ignore)
    panels = [overlay(overlay(image, gt, GT_COLOUR, 0.35), pred, PRED_COLOUR, 0.35), *maps]
    y0, y1, x0, x1 = _crop_box([gt, pred], gt.shape)
    titles = ["ground truth (green), prediction (blue)",
              f"FN distance, peak {maps[0].max():.2f}", f"FP distance, peak {maps[1].max():.2f}"]
    fig = Figure(figsize=(11, 3.9), dpi=100)
    for i, (panel, title) in enumerate(zip(panels, titles, strict=True)):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.imshow(panel[y0:y1, x0:x1], cmap="magma" if i else None, interpolation="nearest",
                  extent=(x0 - 0.5, x1 - 0.5, y1 - 0.5, y0 - 0.5))
        ax.plot([x], [y], marker="*", markersize=16, markeredgecolor="black",
                color="#2ecc71" if label else "#e74c3c")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    kind = "positive (FN peak is larger)" if label else "negative (FP peak is at least as large)"
    fig.suptitle(f"next click at (x={x}, y={y}): {kind}", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
