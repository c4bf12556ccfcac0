"""Does the granularity dial work? One click per ground-truth region, predicted at its own g and
at every fixed g, on procedural scenes whose every node has an exact mask and g.

For each node (objects, parts, sub-parts ...) of at least ``min_area`` pixels, the first click of
the evaluation protocol (:class:`unsamv2.eval.interactive.ClickSession`: the deepest interior
point) is decoded once at the node's ground-truth g and once at each g of ``granularities``
(one batched ``predict`` call), and every mask is scored with the evaluation's IoU. A model that
uses g scores higher at the ground-truth g than at any single fixed g; one that ignores it
scores the same everywhere. The evaluation library's policies sweep or fix g but have no
"ground-truth g" policy, which is what this measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROBE_GRANULARITIES: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))


@dataclass(frozen=True)
class ProbeResult:
    """Mean IoU after one click: ``gt_g`` at each node's own g, ``fixed`` per fixed g (keys like
    "0.5"), ``best_fixed_g`` / ``best_fixed`` the best of those; per-level means in ``by_level``."""

    n_masks: int
    gt_g: float
    fixed: dict[str, float]
    best_fixed_g: float
    best_fixed: float
    by_level: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def dial_gain(self) -> float:
        """gt-g IoU minus the best fixed-g IoU (> 0: the dial helps)."""
        return self.gt_g - self.best_fixed


def granularity_probe(predictor: Any, *, scenes: int = 8, seed: int = 1000, size: int = 256,
                      granularities: tuple[float, ...] = PROBE_GRANULARITIES, min_area: int = 64,
                      ) -> ProbeResult:
    """Run the probe (module docstring) with ``predictor`` (an ``UnSAMv2Predictor`` or anything
    with ``set_image`` / ``predict(points, labels, granularity=[...])``) on ``scenes`` procedural
    scenes of ``seed`` at ``size`` px."""
    from unsamv2.eval.interactive import ClickSession, mask_iou
    from unsamv2.scenes import iter_scenes

    gs = [float(g) for g in granularities]
    rows: list[tuple[int, float, list[float]]] = []  # level, iou at gt g, ious at fixed g
    for scene in iter_scenes(scenes, seed, size):
        predictor.set_image(scene.image)
        for node in scene.nodes:
            if node.area < min_area:
                continue
            points, labels = ClickSession(node.mask).click(None)
            masks, _, _ = predictor.predict(points, labels, granularity=[node.granularity, *gs])
            ious = [mask_iou(node.mask, m) for m in masks]
            rows.append((node.level, ious[0], ious[1:]))
    if not rows:
        return ProbeResult(0, float("nan"), {}, float("nan"), float("nan"))
    gt = np.array([r[1] for r in rows])
    fixed = np.array([r[2] for r in rows])
    means = fixed.mean(axis=0)
    best = int(np.argmax(means))
    levels = np.array([r[0] for r in rows])
    by_level = {str(lv): {"n": float((levels == lv).sum()), "gt_g": float(gt[levels == lv].mean()),
                          "best_fixed": float(fixed[levels == lv].mean(axis=0).max())}
                for lv in sorted(set(levels.tolist()))}
    return ProbeResult(len(rows), float(gt.mean()), {f"{g:g}": float(v) for g, v in zip(gs, means, strict=True)},
                       gs[best], float(means[best]), by_level)


@dataclass(frozen=True)
class Sam2ProbeResult:
    """SAM-2's mean IoU after one click (the protocol's first click), per ``kind`` ("object":
    level 0, "part": level 1): ``single`` (``multimask_output=False``), ``best3`` (the best of
    the 3 multimask outputs against the ground truth) and ``chosen3`` (the multimask output with
    the highest predicted IoU); ``n`` regions each."""

    results: dict[str, dict[str, float]]


def sam2_first_click_probe(baseline: Any, *, scenes: int = 32, seed: int = 1000, size: int = 256,
                           min_area: int = 64) -> Sam2ProbeResult:
    """One click per object (level 0) and part (level 1) of ``scenes`` procedural scenes, decoded
    by a SAM-2 baseline (:class:`unsamv2.eval.baselines.Sam2Baseline`) in single- and
    multimask mode; see :class:`Sam2ProbeResult`."""
    from unsamv2.eval.interactive import ClickSession, mask_iou
    from unsamv2.scenes import iter_scenes

    rows: dict[str, list[tuple[float, float, float]]] = {"object": [], "part": []}
    for scene in iter_scenes(scenes, seed, size):
        baseline.set_image(scene.image)
        for node in scene.nodes:
            if node.area < min_area or node.level > 1:
                continue
            points, labels = ClickSession(node.mask).click(None)
            single = baseline.predict_single(points, labels)[0][0]
            masks, iou, _ = baseline.predict_multimask(points, labels)
            ious = [mask_iou(node.mask, m) for m in masks]
            rows["object" if node.level == 0 else "part"].append(
                (mask_iou(node.mask, single), max(ious), ious[int(np.argmax(iou))]))
    results = {}
    for kind, values in rows.items():
        arr = np.array(values, dtype=np.float64).reshape(-1, 3)
        means = arr.mean(axis=0) if len(arr) else np.full(3, np.nan)
        results[kind] = {"n": float(len(arr)), "single": float(means[0]), "best3": float(means[1]),
                         "chosen3": float(means[2])}
    return Sam2ProbeResult(results)


def click_following(baseline: Any, *, scenes: int = 4, seed: int = 1000, size: int = 256,
                    min_area: int = 100) -> float:
    """Does a SAM-2 base follow the click? One click on each object (level 0, ``min_area`` px or
    more) of each scene; the mean IoU, over pairs of clicks and the 3 multimask slots, between the
    masks of the same slot; the median over scenes with two objects or more. About 0 when each
    click gets its own masks, 1 when the masks ignore the click."""
    from unsamv2.eval.interactive import ClickSession, mask_iou
    from unsamv2.scenes import iter_scenes

    overlaps = []
    for scene in iter_scenes(scenes, seed, size):
        nodes = [n for n in scene.nodes if n.level == 0 and n.area >= min_area]
        if len(nodes) < 2:
            continue
        baseline.set_image(scene.image)
        slots = [baseline.predict_multimask(*ClickSession(n.mask).click(None))[0] for n in nodes]
        pairs = [mask_iou(a[k], b[k]) for i, a in enumerate(slots) for b in slots[i + 1:] for k in range(3)]
        overlaps.append(float(np.mean(pairs)))
    return float(np.median(overlaps))
