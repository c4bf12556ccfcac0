"""Place objects in the image, resolve occlusion, and prune the hierarchy to what stays visible.

Objects are pasted back to front into one label image whose pixels hold ``1 + global index`` of
the leaf node they show (0 = background). Objects left too small by occlusion or the image border
are removed and the rest recomposed (so the pixels they had go to whatever lies behind them).
Inside an object, parts left tiny are merged into a touching sibling, and a node left with a
single visible child absorbs it (the child's mask would equal its own). Masks therefore stay
exact: every node is the union of its children, and nothing annotated is empty or tiny.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from unsamv2.scenes.objects import ObjectModel
from unsamv2.scenes.textures import Style


@dataclass(frozen=True)
class Placed:
    """An object model pasted with its canvas' (0, 0) at image pixel (top, left)."""

    model: ObjectModel
    top: int
    left: int


@dataclass
class Composition:
    """The visible scene: leaf label image plus the pruned forest (global node indices)."""

    labels: np.ndarray  # (H, W) int32: 1 + index of the visible leaf, 0 = background
    placed: list[Placed]  # paint order, back to front
    windows: list[tuple[slice, slice]]  # image window of each placed object
    roots: list[int]  # global index of each placed object's node 0
    children: list[list[int]]  # per global node, its children after pruning
    styles: list[Style]  # per global node


def _window(top: int, left: int, shape: tuple[int, int], size: int) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """(image slices, canvas slices) where a canvas of ``shape`` at (top, left) meets the image."""
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + shape[0], size), min(left + shape[1], size)
    if y0 >= y1 or x0 >= x1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))


def _candidate_centre(
    rng: np.random.Generator, centres: list[tuple[float, float, float]], radius: float, size: int
) -> tuple[float, float]:
    """A random centre; often next to an earlier object so that the two overlap."""
    if centres and rng.random() < 0.6:
        y, x, r = centres[int(rng.integers(len(centres)))]
        dist = (r + radius) * rng.uniform(0.35, 0.9)
        phi = rng.uniform(0, 2 * np.pi)
        return y + dist * np.sin(phi), x + dist * np.cos(phi)
    cy, cx = rng.uniform(0.05, 0.95, 2) * size
    return float(cy), float(cx)


def place_objects(rng: np.random.Generator, models: list[ObjectModel], size: int, occlusion: float) -> list[Placed]:
    """Random positions, in paint order; later objects together hide at most ``occlusion`` of an earlier one.

    The fraction counts an object's pixels inside the frame. An object that finds no acceptable
    position in 30 tries (or would be mostly outside the frame) is left out.
    """
    owner = np.full((size, size), -1, dtype=np.int32)
    in_frame: list[int] = []  # pixels of each placed object inside the frame
    visible: list[int] = []  # of which not hidden by later objects
    placed: list[Placed] = []
    centres: list[tuple[float, float, float]] = []  # (y, x, radius) of placed objects
    for model in models:
        mask, total = model.mask, int(model.mask.sum())
        for _ in range(30):
            cy, cx = _candidate_centre(rng, centres, model.radius, size)
            top, left = int(cy - mask.shape[0] / 2), int(cx - mask.shape[1] / 2)
            win = _window(top, left, mask.shape, size)
            if win is None:
                continue
            m = mask[win[1]]
            if m.sum() < 0.6 * total:
                continue
            under = owner[win[0]][m]
            remaining = np.asarray(visible) - np.bincount(under[under >= 0], minlength=len(placed))
            if np.any(remaining < (1.0 - occlusion) * np.asarray(in_frame, dtype=np.float64)):
                continue
            visible = remaining.tolist()
            owner[win[0]][m] = len(placed)
            in_frame.append(int(m.sum()))
            visible.append(int(m.sum()))
            centres.append((cy, cx, model.radius))
            placed.append(Placed(model, top, left))
            break
    return placed


def _offsets(placed: list[Placed]) -> np.ndarray:
    counts = [len(p.model.parents) for p in placed]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def paint_labels(placed: list[Placed], size: int) -> tuple[np.ndarray, list[tuple[slice, slice]]]:
    """The leaf label image (H, W) int32 of ``placed`` (back to front) and each object's image window."""
    labels = np.zeros((size, size), dtype=np.int32)
    windows = []
    for p, offset in zip(placed, _offsets(placed)[:-1], strict=True):
        window = _window(p.top, p.left, p.model.labels.shape, size)
        assert window is not None, "placement keeps every object on the canvas"
        img, loc = window
        local = p.model.labels[loc]
        inside = local >= 0
        labels[img][inside] = local[inside] + int(offset) + 1
        windows.append(img)
    return labels, windows


def _visible_objects(placed: list[Placed], size: int, min_area: int) -> tuple[list[Placed], np.ndarray, list]:
    """Drop objects with fewer than ``min_area`` visible pixels, recomposing until all remaining pass."""
    while True:
        labels, windows = paint_labels(placed, size)
        offsets = _offsets(placed)
        owner = np.concatenate([[len(placed)], np.repeat(np.arange(len(placed)), np.diff(offsets))])
        visible = np.bincount(owner[labels].ravel(), minlength=len(placed) + 1)[:-1]
        if np.all(visible >= min_area):
            return placed, labels, windows
        placed = [p for p, v in zip(placed, visible, strict=True) if v >= min_area]


def subtree_leaves(children: list[list[int]], node: int) -> list[int]:
    """The leaves (nodes without children) of the subtree rooted at ``node``."""
    stack, out = [node], []
    while stack:
        n = stack.pop()
        if children[n]:
            stack.extend(children[n])
        else:
            out.append(n)
    return out


class _Pruner:
    """Top-down pruning of one composed forest; edits ``labels`` in place (merged leaves)."""

    def __init__(self, labels: np.ndarray, parents: np.ndarray, min_part: int) -> None:
        self.labels = labels
        self.children: list[list[int]] = [[] for _ in range(parents.size)]
        for node, parent in enumerate(parents):
            if parent >= 0:
                self.children[int(parent)].append(node)
        self.area = np.bincount(labels.ravel(), minlength=parents.size + 1)[1:].astype(np.int64)
        self.min_part = min_part

    def leaves(self, node: int) -> list[int]:
        return subtree_leaves(self.children, node)

    def subtree_area(self, node: int) -> int:
        return int(self.area[self.leaves(node)].sum())

    def _move(self, sources: list[int], target: int, window: tuple[slice, slice]) -> None:
        view = self.labels[window]
        view[np.isin(view, np.asarray(sources) + 1)] = target + 1
        moved = int(self.area[sources].sum())
        self.area[sources] = 0
        self.area[target] += moved

    def _neighbour_leaf(self, sources: list[int], candidates: list[int], window: tuple[slice, slice]) -> int:
        """The candidate leaf touching ``sources`` along the longest border (else the largest one)."""
        view = self.labels[window]
        own = np.isin(view, np.asarray(sources) + 1)
        ring = view[ndimage.binary_dilation(own) & ~own] - 1
        ring = ring[np.isin(ring, candidates)]
        if ring.size:
            values, counts = np.unique(ring, return_counts=True)
            return int(values[np.argmax(counts)])
        return int(candidates[int(np.argmax(self.area[candidates]))])

    def prune(self, node: int, window: tuple[slice, slice]) -> None:
        """Merge tiny children into touching siblings and splice out single children, recursively."""
        while self.children[node]:
            kids = self.children[node]
            big = [c for c in kids if self.subtree_area(c) >= self.min_part]
            big_leaves = [leaf for c in big for leaf in self.leaves(c)]
            for small in (c for c in kids if c not in big):
                sources = self.leaves(small)
                if big and self.area[sources].sum() > 0:
                    self._move(sources, self._neighbour_leaf(sources, big_leaves, window), window)
            if len(big) >= 2:
                self.children[node] = big
                break
            if not big or not self.children[big[0]]:  # nothing (or one leaf) left: node becomes a leaf
                self._move(self.leaves(node), node, window)
                self.children[node] = []
                break
            self.children[node] = self.children[big[0]]  # adopt the grandchildren
            self.children[big[0]] = []
        for child in self.children[node]:
            self.prune(child, window)


def compose(placed: list[Placed], size: int, min_object: int, min_part: int) -> Composition:
    """Occlusion, removal of hidden objects, and pruning of the part hierarchy (see module doc)."""
    placed, labels, windows = _visible_objects(placed, size, min_object)
    offsets = _offsets(placed)
    parents = [np.zeros(0, dtype=np.int64)]
    for p, off in zip(placed, offsets[:-1], strict=True):
        local = np.asarray(p.model.parents, dtype=np.int64)
        parents.append(np.where(local >= 0, local + off, -1))
    pruner = _Pruner(labels, np.concatenate(parents), min_part)
    roots = [int(o) for o in offsets[:-1]]
    for root, window in zip(roots, windows, strict=True):
        pruner.prune(root, window)
    styles = [s for p in placed for s in p.model.styles]
    return Composition(labels, placed, windows, roots, pruner.children, styles)
