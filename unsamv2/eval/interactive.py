"""Click simulation for interactive segmentation (the RITM / GraCo protocol, docs/architecture.md#evaluation).

The simulated user looks at the current prediction, finds the false-negative region
``FN = gt & ~pred`` and the false-positive region ``FP = pred & ~gt`` (pixels marked *ignore*
excluded from both), and clicks at the point deepest inside the larger of the two:

1. each error map is padded with one pixel of background on every side, so that the image border
   counts as a boundary, and its exact Euclidean distance transform is taken
   (:func:`scipy.ndimage.distance_transform_edt`: distance of each error pixel to the nearest
   non-error pixel); the padding is then removed;
2. pixels that were already clicked get distance 0;
3. the click is *positive* (label 1, in the FN map) only if the FN peak is strictly larger than the
   FP peak, otherwise *negative* (label 0, in the FP map) — ties go to the negative click;
4. the click is the first pixel with the peak value in row-major order (smallest y, then smallest x).

The first click sees an empty prediction, so it lands at the deepest interior point of the object.
When no unclicked error pixel is left, both peaks are 0 and rule 3-4 gives a negative click at
pixel (0, 0), exactly like the reference clicker; this only happens when every remaining error
pixel was already clicked.

Coordinates: masks are indexed ``[y, x]``; points given to predictors are ``(x, y)`` floats, the
SAM convention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import distance_transform_edt

from unsamv2.errors import InputError

PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``predict(points (N, 2) float (x, y), labels (N,) int 1/0) -> mask (H, W) bool``."""


def mask_iou(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """IoU of ``pred`` against ``gt`` (both (H, W) bool), not counting ``ignore`` pixels.

    Returns 1.0 when both masks are empty outside the ignore region.
    """
    if ignore is None:
        inter = np.count_nonzero(gt & pred)
        union = np.count_nonzero(gt | pred)
    else:
        valid = ~ignore
        inter = np.count_nonzero(gt & pred & valid)
        union = np.count_nonzero((gt | pred) & valid)
    return 1.0 if union == 0 else float(inter) / float(union)


def _error_peak(error: np.ndarray, not_clicked: np.ndarray) -> tuple[float, int]:
    """Peak distance inside ``error`` (H, W) bool and the flat index of its first occurrence.

    The transform is computed on the error's bounding box plus one pixel on each side: every
    pixel outside the box is background, so the distances inside it are exactly those of the
    full, 1-px-padded image (the nearest background pixel of a box pixel, clamped to the box's
    border ring, is never farther away). A peak of 0 reports flat index 0, as the full-image
    argmax would.
    """
    rows = np.flatnonzero(error.any(axis=1))
    if rows.size == 0:
        return 0.0, 0
    cols = np.flatnonzero(error.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = np.pad(error[y0:y1, x0:x1], 1)
    dist = distance_transform_edt(crop)[1:-1, 1:-1]
    dist *= not_clicked[y0:y1, x0:x1]
    local = int(np.argmax(dist))  # first maximum in row-major order
    peak = float(dist.flat[local])
    if peak == 0.0:
        return 0.0, 0
    ly, lx = divmod(local, x1 - x0)
    return peak, (y0 + ly) * error.shape[1] + (x0 + lx)


def next_click(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    ignore: np.ndarray | None = None,
    not_clicked: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """The next simulated click as ``(x, y, label)``, label 1 positive / 0 negative.

    ``gt``, ``pred``, ``ignore`` (H, W) bool; ``not_clicked`` (H, W) bool, False at pixels
    clicked before (None: nothing clicked yet). See the module docstring for the rule.
    """
    if ignore is None:
        fn = gt & ~pred
        fp = pred & ~gt
    else:
        fn = gt & ~pred & ~ignore
        fp = pred & ~gt & ~ignore
    if not_clicked is None:
        not_clicked = np.ones(gt.shape, dtype=bool)
    fn_peak, fn_index = _error_peak(fn, not_clicked)
    fp_peak, fp_index = _error_peak(fp, not_clicked)
    positive = fn_peak > fp_peak
    y, x = divmod(fn_index if positive else fp_index, gt.shape[1])
    return x, y, int(positive)


def _check_masks(gt: np.ndarray, ignore: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    gt = np.asarray(gt)
    if gt.ndim != 2:
        raise InputError(f"gt must be an (H, W) mask, got shape {gt.shape}.")
    gt = gt.astype(bool, copy=False)
    if ignore is not None:
        ignore = np.asarray(ignore).astype(bool, copy=False)
        if ignore.shape != gt.shape:
            raise InputError(f"ignore has shape {ignore.shape} but gt has {gt.shape}; give masks of one size.")
        if not ignore.any():
            ignore = None
    if not (gt if ignore is None else gt & ~ignore).any():
        raise InputError("gt has no pixel outside the ignore region; drop empty objects before evaluating.")
    return gt, ignore


@dataclass
class ClickSession:
    """The clicks of one simulated user on one object; feed it predictions, it places clicks.

    ``points`` (N, 2) float (x, y), ``labels`` (N,) int; ``ious`` the IoU after each click.
    """

    gt: np.ndarray
    ignore: np.ndarray | None = None
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)
    _not_clicked: np.ndarray = field(init=False, repr=False)  # set in __post_init__

    def __post_init__(self) -> None:
        self.gt, self.ignore = _check_masks(self.gt, self.ignore)
        self._not_clicked = np.ones(self.gt.shape, dtype=bool)

    def click(self, pred: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Place the next click against ``pred`` ((H, W) bool, None = empty); return all clicks.

        Returns ``points`` (N, 2) float32 (x, y) and ``labels`` (N,) int32, oldest first.
        """
        if pred is None:
            pred = np.zeros(self.gt.shape, dtype=bool)
        x, y, label = next_click(self.gt, pred, ignore=self.ignore, not_clicked=self._not_clicked)
        self._not_clicked[y, x] = False
        self.points.append((float(x), float(y)))
        self.labels.append(label)
        return self.arrays()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All clicks so far: points (N, 2) float32 (x, y), labels (N,) int32."""
        points = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
        return points, np.asarray(self.labels, dtype=np.int32)

    def record(self, pred: np.ndarray) -> float:
        """Score ``pred`` (H, W) bool against the ground truth, append and return its IoU."""
        pred = np.asarray(pred).astype(bool, copy=False)
        if pred.shape != self.gt.shape:
            raise InputError(f"the predictor returned a mask of shape {pred.shape}, expected {self.gt.shape}.")
        iou = mask_iou(self.gt, pred, self.ignore)
        self.ious.append(iou)
        return iou

    def copy(self) -> ClickSession:
        """An independent copy (same clicks so far), to branch the loop."""
        twin = ClickSession.__new__(ClickSession)
        twin.gt, twin.ignore = self.gt, self.ignore
        twin.points, twin.labels, twin.ious = list(self.points), list(self.labels), list(self.ious)
        twin._not_clicked = self._not_clicked.copy()
        return twin


@dataclass(frozen=True)
class ClickTrace:
    """Everything one click loop produced: IoU curve, clicks and (optionally) the masks."""

    ious: list[float]
    points: np.ndarray  # (N, 2) float32, (x, y)
    labels: np.ndarray  # (N,) int32, 1 positive / 0 negative
    masks: list[np.ndarray]  # (H, W) bool after each click; empty unless keep_masks


def run_click_loop(
    session: ClickSession,
    predict: PredictFn,
    pred: np.ndarray | None,
    *,
    max_clicks: int,
    target_iou: float,
    keep_masks: bool = False,
) -> list[np.ndarray]:
    """Continue ``session`` from prediction ``pred`` until ``target_iou`` or ``max_clicks`` clicks.

    Returns the masks predicted on the way when ``keep_masks`` (else an empty list).
    """
    masks: list[np.ndarray] = []
    while len(session.ious) < max_clicks and not (session.ious and session.ious[-1] >= target_iou):
        points, labels = session.click(pred)
        pred = np.asarray(predict(points, labels)).astype(bool, copy=False)
        session.record(pred)
        if keep_masks:
            masks.append(pred)
    return masks


def _check_loop_args(max_clicks: int, target_iou: float) -> None:
    if int(max_clicks) < 1:
        raise InputError(f"max_clicks must be at least 1, got {max_clicks}.")
    if not 0.0 < float(target_iou) <= 1.0:
        raise InputError(f"target_iou must be in (0, 1], got {target_iou}.")


def simulate_clicks_trace(
    gt: np.ndarray,
    predict: PredictFn,
    *,
    ignore: np.ndarray | None = None,
    max_clicks: int = 20,
    target_iou: float = 0.90,
    keep_masks: bool = False,
) -> ClickTrace:
    """Like :func:`simulate_clicks`, also returning the clicks (and masks, for galleries)."""
    _check_loop_args(max_clicks, target_iou)
    session = ClickSession(gt, ignore)
    masks = run_click_loop(session, predict, None, max_clicks=int(max_clicks),
                           target_iou=float(target_iou), keep_masks=keep_masks)
    points, labels = session.arrays()
    return ClickTrace(ious=list(session.ious), points=points, labels=labels, masks=masks)


def simulate_clicks(
    gt: np.ndarray,
    predict: PredictFn,
    *,
    ignore: np.ndarray | None = None,
    max_clicks: int = 20,
    target_iou: float = 0.90,
) -> list[float]:
    """Simulate a user clicking on object ``gt`` until IoU >= ``target_iou`` or ``max_clicks``.

    ``gt`` (H, W) bool; ``ignore`` (H, W) bool or None — pixels excluded from the IoU and from
    click placement. ``predict(points, labels)`` receives *all* clicks so far, oldest first:
    points (N, 2) float32 in (x, y) pixels and labels (N,) int32 (1 positive, 0 negative); it
    returns the (H, W) bool prediction. Returns the IoU after each click; the list stops at the
    first click whose IoU reaches the target (so it has 1..max_clicks entries).
    """
    return simulate_clicks_trace(gt, predict, ignore=ignore, max_clicks=max_clicks,
                                 target_iou=target_iou).ious
