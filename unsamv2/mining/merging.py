"""Bottom-up merging of 4-connected patch regions (the "conquer" step's core, docs/architecture.md#mining-conquer).

Semantics (both implementations below follow them exactly and return identical masks):

* Every patch of the (H, W) grid starts as its own region. Regions are 4-connected.
* The similarity of two adjacent regions is the cosine of their mean features; the mean is the sum
  of the member features divided by the count, so the cosine equals that of the feature *sums*.
  A region whose feature sum is the zero vector has similarity 0 with every region.
* For each threshold in the given order: repeatedly merge the globally most similar adjacent pair
  while that similarity is >= the threshold. Then the level is every region that still has at
  least one neighbour and at least ``min_size`` patches.
* Ties (pairs with exactly the same similarity) are broken by region ids: the pair (a, b), a < b,
  with the smallest a wins, then the smallest b. Patches have ids 0 .. H*W-1 in row-major order
  ((y, x) -> y * W + x); the region made by the k-th merge gets id H*W + k.
* Within a level, regions are ordered by their first patch in row-major order.

:func:`merge_regions` runs a compiled kernel (:mod:`unsamv2.mining._merge_kernel`): lazily
evaluated similarities (rigorous upper bounds, evaluated only when they reach the top) in a
two-level heap whose per-region batches are inherited by merged regions. Without numba it falls
back to :func:`_merge_python`, a binary heap with lazy invalidation (a merged region gets a new
id, so entries that mention a dead id are skipped when popped). :func:`merge_regions_reference`
is the straightforward formulation (a dict of pair similarities, scanned for its maximum after
every merge, as in the research release); it is the executable specification both are tested
against.

The fallback and the reference share the similarity helpers below, so they see bit-identical
similarities. The compiled kernel sums the same products in its own (vectorised) order: its
similarities agree up to float64 rounding (about 1e-15), so a choice could differ only where two
candidates (or a candidate and a threshold) agree to that precision; exact ties (e.g. small
integer features) are exact in both. Identity is tested on random, integer, piecewise and
photo-derived features.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from unsamv2.errors import InputError

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5)
_TINY = 1e-300


def _check_inputs(
    features: np.ndarray, thresholds: Sequence[float], min_size: int
) -> tuple[np.ndarray, tuple[float, ...], int]:
    arr = np.asarray(features)
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise InputError(
            f"features must be an (H, W, D) array with H, W, D >= 1, got shape {arr.shape}."
        )
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"features must be real numbers, got dtype {arr.dtype}.")
    # float32 stays float32 (float64 holds it exactly; the kernel converts rows on the fly and
    # never writes to them); everything else becomes float64.
    arr = np.ascontiguousarray(arr, dtype=np.float32 if arr.dtype == np.float32 else np.float64)
    if not np.isfinite(arr).all():
        raise InputError("features contain NaN or infinite values; check the feature extractor.")
    try:
        thr = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError) as exc:
        raise InputError(f"thresholds must be a sequence of numbers, got {thresholds!r}.") from exc
    if not all(np.isfinite(thr)):
        raise InputError(f"thresholds must be finite numbers, got {thr}.")
    if isinstance(min_size, bool) or int(min_size) != min_size or min_size < 1:
        raise InputError(f"min_size must be an integer >= 1, got {min_size!r}.")
    return arr, thr, int(min_size)


def _grid_edges(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent patch pairs (a, b), a < b, of a 4-connected (height, width) grid, row-major ids."""
    ids = np.arange(height * width, dtype=np.int64).reshape(height, width)
    a = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    b = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    return a, b


def _row_norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norms (N,) of the rows of x (N, D)."""
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def _edge_cosines(sums: np.ndarray, norms: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosines (E,) between rows a[e] and b[e] of sums; 0 where either row is the zero vector."""
    dots = np.einsum("ij,ij->i", sums[a], sums[b])
    return dots / np.maximum(norms[a] * norms[b], _TINY)


def _merge_into(sums: np.ndarray, norms: np.ndarray, a: int, b: int, m: int) -> None:
    """Write the feature sum and norm of region m = a ∪ b."""
    np.add(sums[a], sums[b], out=sums[m])
    norms[m] = _row_norms(sums[m : m + 1])[0]


def _cosines_to(sums: np.ndarray, norms: np.ndarray, ks: list[int], m: int) -> list[float]:
    """Cosines between region m and the regions ks (in the given order)."""
    dots = sums[ks] @ sums[m]
    return (dots / np.maximum(norms[ks] * norms[m], _TINY)).tolist()


def _roots(parent: np.ndarray, n: int) -> np.ndarray:
    """The current region id (N,) of every patch, by pointer doubling on the merge forest."""
    up = np.where(parent < 0, np.arange(parent.size), parent)
    while True:
        nxt = up[up]
        if np.array_equal(nxt, up):
            return up[:n]
        up = nxt


def _level_from_roots(root: np.ndarray, live: int, min_size: int, height: int, width: int) -> np.ndarray:
    """Masks (K, H, W) of the regions in ``root`` (N,) region ids with >= min_size patches.

    A region has a neighbour iff more than one region is left (the grid is 4-connected), so a
    level with a single live region is empty. Masks are ordered by their first patch.
    """
    if live < 2:
        return np.zeros((0, height, width), dtype=bool)
    ids, first, counts = np.unique(root, return_index=True, return_counts=True)
    sel = counts >= min_size
    chosen = ids[sel][np.argsort(first[sel], kind="stable")]
    return (root[None, :] == chosen[:, None]).reshape(len(chosen), height, width)


def _merge_python(feats: np.ndarray, thr: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Heap-with-lazy-invalidation merging in pure Python (used when numba is unavailable)."""
    height, width, dim = feats.shape
    n = height * width
    total = 2 * n - 1
    sums = np.empty((total, dim), dtype=np.float64)
    sums[:n] = feats.reshape(n, dim)
    norms = np.empty(total, dtype=np.float64)
    norms[:n] = _row_norms(sums[:n])
    ea, eb = _grid_edges(height, width)
    heap = list(zip((-_edge_cosines(sums, norms, ea, eb)).tolist(), ea.tolist(), eb.tolist(), strict=True))
    heapq.heapify(heap)
    nbrs: list[set[int]] = [set() for _ in range(2 * n - 1)]
    for a, b in zip(ea.tolist(), eb.tolist(), strict=True):
        nbrs[a].add(b)
        nbrs[b].add(a)
    alive = bytearray(total)
    alive[:n] = b"\x01" * n
    parent = np.full(total, -1, dtype=np.int64)
    next_id, n_alive = n, n
    roots = np.empty((len(thr), n), dtype=np.int64)
    live = np.empty(len(thr), dtype=np.int64)
    for li, t in enumerate(thr):
        while heap and -heap[0][0] >= t:
            _, a, b = heapq.heappop(heap)
            if not (alive[a] and alive[b]):
                continue  # stale entry: one side was merged away since it was pushed
            m, next_id, n_alive = next_id, next_id + 1, n_alive - 1
            _merge_into(sums, norms, a, b, m)
            ks = (nbrs[a] | nbrs[b]) - {a, b}
            for k in ks:
                nbrs[k] -= {a, b}
                nbrs[k].add(m)
            nbrs[m], nbrs[a], nbrs[b] = ks, set(), set()
            alive[a], alive[b], alive[m] = 0, 0, 1
            parent[a] = parent[b] = m
            if ks:
                kl = sorted(ks)
                for k, c in zip(kl, _cosines_to(sums, norms, kl, m), strict=True):
                    heapq.heappush(heap, (-c, k, m))
        roots[li] = _roots(parent, n)
        live[li] = n_alive
    return roots, live


def _merge_compiled(feats: np.ndarray, thr: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        from unsamv2.mining._merge_kernel import merge_levels
    except ImportError:  # numba missing or broken: fall back to pure Python
        return None
    height, width, dim = feats.shape
    x = feats.reshape(height * width, dim)  # C-contiguous float32/float64 (see _check_inputs)
    return merge_levels(x, height, width, np.asarray(thr, dtype=np.float64))


def merge_regions(
    features: np.ndarray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    min_size: int = 4,
) -> list[np.ndarray]:
    """Merge adjacent regions of a patch grid greedily by cosine of mean features.

    Args:
        features: (H, W, D) float patch features (any real dtype; computed in float64).
        thresholds: similarity thresholds, processed in the given order; one level per threshold.
        min_size: smallest region (in patches) that is reported in a level.

    Returns:
        One (K_i, H, W) bool array per threshold (``(0, H, W)`` when a level has no region);
        masks of a level are disjoint and ordered by their first patch in row-major order.
        See the module docstring for the exact rule and the tie-breaking.
    """
    feats, thr, min_size = _check_inputs(features, thresholds, min_size)
    height, width, _ = feats.shape
    result = _merge_compiled(feats, thr)
    roots, live = result if result is not None else _merge_python(feats, thr)
    return [
        _level_from_roots(roots[i], int(live[i]), min_size, height, width) for i in range(len(thr))
    ]


def merge_regions_reference(
    features: np.ndarray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    min_size: int = 4,
) -> list[np.ndarray]:
    """Straightforward implementation of :func:`merge_regions` (same contract and output).

    Keeps a dict of the similarities of all adjacent pairs and scans it for the maximum after
    every merge (O(E) per merge). Meant as the readable specification and the test oracle.
    """
    feats, thr, min_size = _check_inputs(features, thresholds, min_size)
    height, width, dim = feats.shape
    n = height * width
    sums = np.empty((2 * n - 1, dim), dtype=np.float64)
    sums[:n] = feats.reshape(n, dim)
    norms = np.empty(2 * n - 1, dtype=np.float64)
    norms[:n] = _row_norms(sums[:n])
    ea, eb = _grid_edges(height, width)
    sims = dict(
        zip(
            zip(ea.tolist(), eb.tolist(), strict=True),
            _edge_cosines(sums, norms, ea, eb).tolist(),
            strict=True,
        )
    )
    members = {i: [i] for i in range(n)}
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in sims:
        neighbours[a].add(b)
        neighbours[b].add(a)
    next_id = n

    levels = []
    for t in thr:
        while sims:
            (a, b), best = max(sims.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
            if best < t:
                break
            m = next_id
            next_id += 1
            _merge_into(sums, norms, a, b, m)
            members[m] = members.pop(a) + members.pop(b)
            ks = (neighbours.pop(a) | neighbours.pop(b)) - {a, b}
            for k in ks:
                for old in (a, b):
                    if old in neighbours[k]:
                        neighbours[k].discard(old)
                        del sims[(min(k, old), max(k, old))]
                neighbours[k].add(m)
            del sims[(a, b)]
            neighbours[m] = ks
            kl = sorted(ks)
            if kl:
                for k, c in zip(kl, _cosines_to(sums, norms, kl, m), strict=True):
                    sims[(k, m)] = c
        kept = [r for r in members if len(members[r]) >= min_size and neighbours[r]]
        kept.sort(key=lambda r: min(members[r]))
        level = np.zeros((len(kept), height, width), dtype=bool)
        for i, r in enumerate(kept):
            level[i].reshape(-1)[members[r]] = True
        levels.append(level)
    return levels
