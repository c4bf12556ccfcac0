"""Granularity policies: how a click loop picks its masks (docs/architecture.md#evaluation).

- :class:`OracleGranularity` — the paper's protocol: for each object, a full click loop per g in
  0.1 … 1.0; the g with the fewest clicks to the target wins, ties by the IoU after click 1.
- :class:`FixedGranularity` — one g for every object and every click.
- :class:`Sam2Single`, :class:`Sam2BestOf3` — SAM-2 baselines without granularity: its single
  mask output, or the best of its three masks measured against the ground truth (an oracle too).

Every policy runs on an image that was embedded once (``predictor.set_image``) by the caller; a
policy only calls ``predict*``. With ``mask_feedback`` on (the default, as in SAM-style
evaluation and in our training recipe), each click after the first passes the previous click's
low-resolution logits of the kept mask as ``mask_input``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from unsamv2.errors import InputError
from unsamv2.eval.interactive import ClickSession, mask_iou, run_click_loop
from unsamv2.eval.protocols import GranularityPredictor, MultimaskPredictor, Prediction

PAPER_GRANULARITIES: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))


@dataclass(frozen=True)
class LoopSettings:
    """Per-run constants of the click loop."""

    target_iou: float = 0.90
    max_clicks: int = 20
    mask_feedback: bool = True


@dataclass(frozen=True)
class GranularityRun:
    """One g of the oracle sweep: its IoU curve and whether/when it reached the target."""

    granularity: float
    ious: list[float]
    clicks: int | None  # clicks to the target; None if not reached within its budget
    budget: int  # the most clicks it was allowed (the early cut, see choose_oracle)


@dataclass(frozen=True)
class ObjectRun:
    """One object under one policy."""

    policy: str
    ious: list[float]  # IoU after each click of the kept loop, 1..max_clicks entries
    granularity: float | None = None  # chosen (oracle) or fixed g; None for SAM-2 baselines
    sweep: tuple[GranularityRun, ...] = ()  # oracle only: every g tried, in sweep order
    n_predictions: int = 0  # predictor calls spent on this object
    points: np.ndarray | None = field(default=None, repr=False, compare=False)  # (N, 2) (x, y)
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)  # (N,) 1/0


class Policy(Protocol):
    """A policy runs the click loop on one object of the already-embedded image."""

    @property
    def name(self) -> str: ...

    @property
    def needs(self) -> str:
        """``"granularity"`` (GranularityPredictor) or ``"multimask"`` (MultimaskPredictor)."""
        ...

    def run(self, predictor, gt: np.ndarray, ignore: np.ndarray | None, settings: LoopSettings) -> ObjectRun:
        """Simulate the clicks on ``gt`` (H, W) bool; see :class:`ObjectRun`."""


def _check_prediction(pred: Prediction, n: int, shape: tuple[int, int], who: str) -> Prediction:
    masks, iou, low = (np.asarray(a) for a in pred)
    if masks.ndim != 3 or masks.shape[0] != n or masks.shape[1:] != shape:
        raise InputError(f"{who} returned masks of shape {masks.shape}, expected {(n, *shape)}.")
    if low.ndim != 3 or low.shape[0] != n:
        raise InputError(f"{who} returned low-res logits of shape {low.shape}, expected ({n}, S, S).")
    return masks.astype(bool, copy=False), iou, low


class _Feedback:
    """Carries the kept mask's low-res logits from one click to the next."""

    def __init__(self, enabled: bool, low: np.ndarray | None = None) -> None:
        self.enabled = enabled
        self.mask_input = low if enabled else None
        self.calls = 0

    def keep(self, masks: np.ndarray, low: np.ndarray, index: int) -> np.ndarray:
        self.calls += 1
        if self.enabled:
            self.mask_input = np.asarray(low[index : index + 1], dtype=np.float32)
        return masks[index]


def choose_oracle(runs: Sequence[GranularityRun], max_clicks: int) -> int:
    """Index of the winning g: fewest clicks to the target, ties by first-click IoU, then first g.

    Runs that did not reach the target rank as ``min(budget + 1, max_clicks)`` clicks, which is
    exactly the click index at which the reference loop stops them (GraCo's
    ``evaluate_sample``). So a cut run never ties with a winner, and when nothing reached the
    target before click ``max_clicks`` all runs tie and the best first click wins.
    """
    if not runs:
        raise InputError("the oracle needs at least one granularity value.")
    keys = [r.clicks if r.clicks is not None else min(r.budget + 1, max_clicks) for r in runs]
    best = min(keys)
    tied = [i for i, k in enumerate(keys) if k == best]
    return max(tied, key=lambda i: (runs[i].ious[0], -i))


@dataclass(frozen=True)
class OracleGranularity:
    """The paper's oracle over ``granularities`` (default 0.1, 0.2, …, 1.0), with the early cut.

    Early cut (the reference's): once some g reached the target in ``b`` clicks, every later g
    gets at most ``b`` clicks — it can tie (and then compete on first-click IoU) but never needs
    more. The reference runs one click more before cutting; that click cannot change the choice,
    so we skip it. All g share click 1 (the empty prediction gives the same first click), so
    click 1 is one batched ``predict`` call with every g.
    """

    granularities: tuple[float, ...] = PAPER_GRANULARITIES
    name: str = "oracle"
    needs: str = "granularity"

    def run(self, predictor: GranularityPredictor, gt: np.ndarray, ignore: np.ndarray | None,
            settings: LoopSettings) -> ObjectRun:
        gs = [float(g) for g in self.granularities]
        first = ClickSession(gt, ignore)
        points, labels = first.click(None)
        masks, _, low = _check_prediction(
            predictor.predict(points, labels, granularity=gs, mask_input=None),
            len(gs), first.gt.shape, "predict(granularity=[...])")
        calls, best, runs, sessions = 1, None, [], []
        for i, g in enumerate(gs):
            session = first.copy()
            sessions.append(session)
            session.record(masks[i])
            budget = settings.max_clicks if best is None else best
            calls += _continue_granularity(predictor, session, masks[i], low[i:i + 1], g, budget, settings)
            clicks = len(session.ious) if session.ious[-1] >= settings.target_iou else None
            if clicks is not None and (best is None or clicks < best):
                best = clicks
            runs.append(GranularityRun(g, list(session.ious), clicks, budget))
        win = choose_oracle(runs, settings.max_clicks)
        points, labels = sessions[win].arrays()
        return ObjectRun(self.name, runs[win].ious, gs[win], tuple(runs), calls, points, labels)


def _continue_granularity(predictor: GranularityPredictor, session: ClickSession, pred: np.ndarray,
                          low: np.ndarray, g: float, budget: int, settings: LoopSettings) -> int:
    """Run clicks 2..budget at one g; returns the number of predictor calls."""
    feedback = _Feedback(settings.mask_feedback, np.asarray(low, dtype=np.float32))
    shape = session.gt.shape

    def predict(pts: np.ndarray, lab: np.ndarray) -> np.ndarray:
        m, _, lo = _check_prediction(
            predictor.predict(pts, lab, granularity=g, mask_input=feedback.mask_input), 1, shape, "predict")
        return feedback.keep(m, lo, 0)

    run_click_loop(session, predict, pred, max_clicks=budget, target_iou=settings.target_iou)
    return feedback.calls


def _single_loop(name: str, g: float | None, gt: np.ndarray, ignore: np.ndarray | None,
                 settings: LoopSettings, call, pick) -> ObjectRun:
    """A click loop where ``call(points, labels, mask_input)`` predicts and ``pick`` keeps one mask."""
    session = ClickSession(gt, ignore)
    feedback = _Feedback(settings.mask_feedback)

    def predict(pts: np.ndarray, lab: np.ndarray) -> np.ndarray:
        masks, _, low = call(pts, lab, feedback.mask_input)
        return feedback.keep(masks, low, pick(session, masks))

    run_click_loop(session, predict, None, max_clicks=settings.max_clicks, target_iou=settings.target_iou)
    points, labels = session.arrays()
    return ObjectRun(name, list(session.ious), g, (), feedback.calls, points, labels)


@dataclass(frozen=True)
class FixedGranularity:
    """The same ``granularity`` for every object and click."""

    granularity: float
    needs: str = "granularity"

    def __post_init__(self) -> None:
        if not 0.0 <= self.granularity <= 1.0:
            raise InputError(f"a fixed granularity must be in [0, 1], got {self.granularity}.")

    @property
    def name(self) -> str:
        return f"g={self.granularity:g}"

    def run(self, predictor: GranularityPredictor, gt: np.ndarray, ignore: np.ndarray | None,
            settings: LoopSettings) -> ObjectRun:
        shape = np.asarray(gt).shape
        g = float(self.granularity)

        def call(pts, lab, mask_input):
            return _check_prediction(predictor.predict(pts, lab, granularity=g, mask_input=mask_input),
                                     1, shape, "predict")

        return _single_loop(self.name, g, gt, ignore, settings, call, lambda s, m: 0)


@dataclass(frozen=True)
class Sam2Single:
    """SAM-2's single-mask output at every click (``predict_single``)."""

    name: str = "sam2-single"
    needs: str = "multimask"

    def run(self, predictor: MultimaskPredictor, gt: np.ndarray, ignore: np.ndarray | None,
            settings: LoopSettings) -> ObjectRun:
        shape = np.asarray(gt).shape

        def call(pts, lab, mask_input):
            return _check_prediction(predictor.predict_single(pts, lab, mask_input=mask_input),
                                     1, shape, "predict_single")

        return _single_loop(self.name, None, gt, ignore, settings, call, lambda s, m: 0)


@dataclass(frozen=True)
class Sam2BestOf3:
    """The best of SAM-2's three masks against the ground truth at every click (first on ties)."""

    name: str = "sam2-best3"
    needs: str = "multimask"

    def run(self, predictor: MultimaskPredictor, gt: np.ndarray, ignore: np.ndarray | None,
            settings: LoopSettings) -> ObjectRun:
        shape = np.asarray(gt).shape

        def call(pts, lab, mask_input):
            return _check_prediction(predictor.predict_multimask(pts, lab, mask_input=mask_input),
                                     3, shape, "predict_multimask")

        def pick(session: ClickSession, masks: np.ndarray) -> int:
            return int(np.argmax([mask_iou(session.gt, m, session.ignore) for m in masks]))

        return _single_loop(self.name, None, gt, ignore, settings, call, pick)


def parse_policy(spec: str) -> Policy:
    """A policy from its name: ``oracle``, ``g=0.5`` (fixed), ``sam2-single``, ``sam2-best3``."""
    text = spec.strip().lower()
    if text == "oracle":
        return OracleGranularity()
    if text in ("sam2-single", "sam2-best3"):
        return Sam2Single() if text == "sam2-single" else Sam2BestOf3()
    if text.startswith(("g=", "fixed:")):
        try:
            return FixedGranularity(float(text.split("=", 1)[-1].split(":", 1)[-1]))
        except ValueError:
            pass
    raise InputError(f"unknown policy {spec!r}; use oracle, g=<value in [0, 1]>, sam2-single or sam2-best3.")
