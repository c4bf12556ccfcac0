"""Interactive-segmentation metrics over per-object IoU curves (docs/architecture.md#evaluation).

An *IoU curve* is the list of IoUs after click 1, 2, ... for one object, as returned by
:func:`unsamv2.eval.interactive.simulate_clicks`. The loop stops at the first click whose IoU
reaches the run's target, so curves have different lengths.

Padding rule (explicit): a curve shorter than ``max_clicks`` stopped because it reached the
target; it is treated as keeping its last IoU for every later click (the user stops clicking and
keeps that mask). Consequently

- NoC at a threshold <= the run's target is exact: the first click index with IoU >= threshold
  lies inside the recorded curve, or the threshold is never reached (a full-length curve);
- NoC at a threshold *above* the run's target is not measurable from stopped curves; pass
  ``run_target`` to have that refused instead of silently counted as failures;
- mIoU after k clicks uses the padded curves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unsamv2.errors import InputError

Curves = Sequence[Sequence[float]]


def _check(curves: Curves, max_clicks: int) -> None:
    if max_clicks < 1:
        raise InputError(f"max_clicks must be at least 1, got {max_clicks}.")
    for i, curve in enumerate(curves):
        if len(curve) == 0:
            raise InputError(f"IoU curve {i} is empty; every object needs at least one click.")
        if len(curve) > max_clicks:
            raise InputError(f"IoU curve {i} has {len(curve)} clicks, more than max_clicks={max_clicks}.")


def _check_threshold(threshold: float, run_target: float | None) -> None:
    if run_target is not None and threshold > run_target + 1e-12:
        raise InputError(
            f"NoC at {threshold:.2f} cannot be measured from curves that stopped at the target "
            f"{run_target:.2f}; rerun with target_iou >= {threshold:.2f}."
        )


def clicks_to_reach(curves: Curves, threshold: float, max_clicks: int = 20) -> np.ndarray:
    """Per object (N,) int: the first click (1-based) with IoU >= ``threshold``, else ``max_clicks``."""
    _check(curves, max_clicks)
    out = np.full(len(curves), max_clicks, dtype=np.int64)
    for i, curve in enumerate(curves):
        hits = np.flatnonzero(np.asarray(curve, dtype=np.float64) >= threshold)
        if hits.size:
            out[i] = hits[0] + 1
    return out


def reached(curves: Curves, threshold: float, max_clicks: int = 20) -> np.ndarray:
    """Per object (N,) bool: whether IoU >= ``threshold`` within ``max_clicks`` clicks."""
    _check(curves, max_clicks)
    return np.array([bool(np.any(np.asarray(c[:max_clicks]) >= threshold)) for c in curves], dtype=bool)


def noc(
    iou_curves: Curves,
    threshold: float,
    max_clicks: int = 20,
    *,
    run_target: float | None = None,
) -> float:
    """Mean number of clicks to reach IoU >= ``threshold`` (NoC@threshold), ``max_clicks`` if never.

    ``run_target``: the target the curves were simulated with; thresholds above it are refused.
    Returns NaN for an empty list of curves.
    """
    _check_threshold(threshold, run_target)
    if len(iou_curves) == 0:
        return float("nan")
    return float(clicks_to_reach(iou_curves, threshold, max_clicks).mean())


def nof(
    iou_curves: Curves,
    threshold: float,
    max_clicks: int = 20,
    *,
    run_target: float | None = None,
) -> int:
    """Number of failures (NoF@threshold): objects whose IoU never reached ``threshold``.

    An object that reaches the threshold exactly at click ``max_clicks`` is *not* a failure
    (RITM's table counts ``NoC == max_clicks``, which includes it; see docs/eval.md).
    """
    _check_threshold(threshold, run_target)
    if len(iou_curves) == 0:
        return 0
    return int((~reached(iou_curves, threshold, max_clicks)).sum())


def pad_curves(iou_curves: Curves, max_clicks: int = 20) -> np.ndarray:
    """Curves as an (N, max_clicks) float64 array, each padded with its last IoU (module docstring)."""
    _check(iou_curves, max_clicks)
    out = np.empty((len(iou_curves), max_clicks), dtype=np.float64)
    for i, curve in enumerate(iou_curves):
        c = np.asarray(curve, dtype=np.float64)
        out[i, : c.size] = c
        out[i, c.size :] = c[-1]
    return out


def miou_curve(iou_curves: Curves, max_clicks: int = 20) -> list[float]:
    """Mean IoU after k = 1..max_clicks clicks over the padded curves (NaN for no curves)."""
    if len(iou_curves) == 0:
        return [float("nan")] * max_clicks
    return pad_curves(iou_curves, max_clicks).mean(axis=0).tolist()


def miou_at(iou_curves: Curves, k: int, max_clicks: int = 20) -> float:
    """Mean IoU after ``k`` clicks (1-based) over the padded curves; ``k=1`` is the 1-IoU metric."""
    if not 1 <= k <= max_clicks:
        raise InputError(f"k must be in 1..{max_clicks}, got {k}.")
    return miou_curve(iou_curves, max_clicks)[k - 1]


def noc_key(threshold: float) -> str:
    """The metric-name suffix of a threshold: 0.9 -> "90", 0.85 -> "85"."""
    return f"{round(threshold * 100):d}"
