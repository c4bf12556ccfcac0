"""Compiled (numba) kernel of :func:`unsamv2.mining.merging.merge_regions`.

Same rule and tie-breaking as the module docstring of :mod:`unsamv2.mining.merging`; a binary heap
with lazy invalidation and lazily evaluated similarities, in machine code:

* heap entries are (key, a, b, pair, exact) with a < b; the entry with the highest key, then the
  smallest a, then the smallest b, is on top. An entry whose a or b is no longer a live region is
  skipped when popped (ids are never reused, so a live pair's similarity never changes).
* lazy evaluation: when a and b merge into m, the similarity of m to each neighbour k is not
  computed; the entry is pushed with a rigorous upper bound instead. Angles obey the triangle
  inequality, so angle(m, k) >= angle(a, k) - angle(a, m), where angle(a, m) follows from scalars
  already known; a small slack covers rounding. A bound entry that reaches the top is evaluated
  exactly and pushed back. Because every key is >= the true similarity of its pair and exact keys
  are equal to it, the first *exact* entry on top is the true maximum, with the same tie-breaking
  as evaluating everything eagerly. Only pairs that come near the top ever cost a D-dim dot.
* adjacency without hashing: every adjacent pair has a slot holding its best known bound (or its
  exact similarity). A region lists its neighbours at creation in its own *pool* entries and gets
  every later (younger) neighbour appended to its *late list*, each entry with the pair's slot.
  Every current neighbour of a live region appears exactly once with a live id in these two lists,
  so a merge reads the bounds it needs by direct index and never resolves old ids.
* entries whose key is below the current threshold wait in a side list until the next level.
* a region has a neighbour iff more than one region is left (the grid is connected), so a level
  is "every live region with >= min_size patches, unless only one region is left".

Importing this module compiles nothing; the first call compiles (and caches on disk when it can).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SLACK = 1e-9  # added to every bound; far above the float64 rounding of the quantities involved


@njit(cache=True, nogil=True)
def _before(c1, a1, b1, c2, a2, b2):  # pragma: no cover - compiled
    """True when heap entry 1 must come out before entry 2."""
    if c1 != c2:
        return c1 > c2
    if a1 != a2:
        return a1 < a2
    return b1 < b2


@njit(cache=True, nogil=True)
def _grow_int(arr, need):  # pragma: no cover - compiled
    if need <= arr.shape[0]:
        return arr
    out = np.empty(max(need, 2 * arr.shape[0]), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(cache=True, nogil=True)
def _grow_float(arr, need):  # pragma: no cover - compiled
    if need <= arr.shape[0]:
        return arr
    out = np.empty(max(need, 2 * arr.shape[0]), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(cache=True, nogil=True)
def _push(hc, hi, hx, size, c, a, b, pair, exact):  # pragma: no cover - compiled
    """Push (c, a, b, pair, exact); hi is (capacity, 3) int64 with columns a, b, pair."""
    if size == hc.shape[0]:
        hc = np.concatenate((hc, np.empty_like(hc)))
        hi = np.concatenate((hi, np.empty_like(hi)))
        hx = np.concatenate((hx, np.empty_like(hx)))
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if _before(c, a, b, hc[p], hi[p, 0], hi[p, 1]):
            hc[i], hx[i] = hc[p], hx[p]
            hi[i, 0], hi[i, 1], hi[i, 2] = hi[p, 0], hi[p, 1], hi[p, 2]
            i = p
        else:
            break
    hc[i], hx[i] = c, exact
    hi[i, 0], hi[i, 1], hi[i, 2] = a, b, pair
    return hc, hi, hx, size + 1


@njit(cache=True, nogil=True)
def _pop(hc, hi, hx, size):  # pragma: no cover - compiled
    """Remove the top entry; returns the new size."""
    size -= 1
    c, e = hc[size], hx[size]
    a, b, pair = hi[size, 0], hi[size, 1], hi[size, 2]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _before(hc[right], hi[right, 0], hi[right, 1],
                                    hc[child], hi[child, 0], hi[child, 1]):
            child = right
        if _before(hc[child], hi[child, 0], hi[child, 1], c, a, b):
            hc[i], hx[i] = hc[child], hx[child]
            hi[i, 0], hi[i, 1], hi[i, 2] = hi[child, 0], hi[child, 1], hi[child, 2]
            i = child
        else:
            break
    if size > 0:
        hc[i], hx[i] = c, e
        hi[i, 0], hi[i, 1], hi[i, 2] = a, b, pair
    return size


@njit(cache=True, nogil=True)
def _find(parent, x):  # pragma: no cover - compiled
    root = x
    while parent[root] >= 0:
        root = parent[root]
    while parent[x] >= 0 and parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@njit(cache=True, nogil=True)
def _cosine(sums, row, norms, ia, ja):  # pragma: no cover - compiled
    """Cosine between the feature sums of regions ia and ja; 0 when either sum is zero."""
    i, j = row[ia], row[ja]
    dim = sums.shape[1]
    s0 = s1 = s2 = s3 = 0.0
    d = 0
    while d + 4 <= dim:
        s0 += sums[i, d] * sums[j, d]
        s1 += sums[i, d + 1] * sums[j, d + 1]
        s2 += sums[i, d + 2] * sums[j, d + 2]
        s3 += sums[i, d + 3] * sums[j, d + 3]
        d += 4
    dot = (s0 + s1) + (s2 + s3)
    while d < dim:
        dot += sums[i, d] * sums[j, d]
        d += 1
    return dot / max(norms[ia] * norms[ja], 1e-300)


@njit(cache=True, nogil=True)
def _drift(norms, a, b, m, cos_ab):  # pragma: no cover - compiled
    """(cos, sin) of the angle between the sums of region a and of m = a + b.

    Returns (-1, 0) (the largest possible angle, pi) when the angle is undefined (a zero sum).
    """
    na, nm = norms[a], norms[m]
    if na * nm <= 0.0:
        return -1.0, 0.0
    c = min(1.0, max(-1.0, (na * na + cos_ab * na * norms[b]) / (na * nm)))
    return c, np.sqrt(max(0.0, 1.0 - c * c))


@njit(cache=True, nogil=True)
def _bound(upper, cd, sd):  # pragma: no cover - compiled
    """Upper bound on cos(m, k) from an upper bound on cos(a, k) and (cos, sin) of angle(a, m).

    angle(m, k) >= angle(a, k) - angle(a, m) >= 0 (triangle inequality on the sphere), and cos is
    decreasing on [0, pi], so cos(m, k) <= cos(angle(a, k) - angle(a, m)) when that difference is
    non-negative (i.e. upper <= cd), and <= 1 otherwise.
    """
    u = min(1.0, max(-1.0, upper))
    if u >= cd:
        return 1.0
    return min(1.0, u * cd + np.sqrt(max(0.0, 1.0 - u * u)) * sd + _SLACK)


@njit(cache=True, nogil=True)
def _collect(src, m, adj, alive, pair_val, mark, val, seen, union, nu):  # pragma: no cover
    """Record the live neighbours of ``src`` (bound in ``val``, stamp m in ``mark``) and add them
    to ``union`` (stamp m in ``seen``); returns the new union length."""
    pool_id, pool_pair, start, length, late_id, late_pair, late_next, head = adj
    for idx in range(start[src], start[src] + length[src]):
        k = pool_id[idx]
        if alive[k]:
            mark[k], val[k] = m, pair_val[pool_pair[idx]]
            if seen[k] != m:
                seen[k], union[nu] = m, k
                nu += 1
    node = head[src]
    while node >= 0:
        k = late_id[node]
        if alive[k]:
            mark[k], val[k] = m, pair_val[late_pair[node]]
            if seen[k] != m:
                seen[k], union[nu] = m, k
                nu += 1
        node = late_next[node]
    return nu


@njit(cache=True, nogil=True)
def _initial_grid(x, height, width):  # pragma: no cover - compiled
    """Norms, neighbour pools, exact similarities and the heap of the initial patch grid.

    Pair slots: i for (i, i + 1), n + i for (i, i + width).
    """
    n = height * width
    total = 2 * n - 1
    row = np.empty(total, dtype=np.int64)  # row of ``x`` that holds a region's feature sum
    row[:n] = np.arange(n)
    norms = np.empty(total)
    for i in range(n):
        s = 0.0
        for d in range(x.shape[1]):
            s += x[i, d] * x[i, d]
        norms[i] = np.sqrt(s)
    pair_val = np.empty(max(16, 16 * n))
    pool_id = np.empty(max(16, 8 * n), dtype=np.int64)
    pool_pair = np.empty(max(16, 8 * n), dtype=np.int64)
    start = np.zeros(total, dtype=np.int64)
    length = np.zeros(total, dtype=np.int64)
    hc = np.empty(max(16, 4 * n))
    hi = np.empty((max(16, 4 * n), 3), dtype=np.int64)
    hx = np.empty(max(16, 4 * n), dtype=np.bool_)
    size = 0
    pos = 0
    for i in range(n):
        y, xx = i // width, i % width
        start[i] = pos
        if y > 0:
            pool_id[pos], pool_pair[pos] = i - width, n + i - width
            pos += 1
        if xx > 0:
            pool_id[pos], pool_pair[pos] = i - 1, i - 1
            pos += 1
        if xx < width - 1:
            pool_id[pos], pool_pair[pos] = i + 1, i
            pos += 1
            c = _cosine(x, row, norms, i, i + 1)
            pair_val[i] = c
            hc, hi, hx, size = _push(hc, hi, hx, size, c, i, i + 1, i, True)
        if y < height - 1:
            pool_id[pos], pool_pair[pos] = i + width, n + i
            pos += 1
            c = _cosine(x, row, norms, i, i + width)
            pair_val[n + i] = c
            hc, hi, hx, size = _push(hc, hi, hx, size, c, i, i + width, n + i, True)
        length[i] = pos - start[i]
    return row, norms, pair_val, pool_id, pool_pair, start, length, pos, hc, hi, hx, size


@njit(cache=True, nogil=True)
def _unpark(wc, wi, waiting, alive, t, hc, hi, hx, size):  # pragma: no cover - compiled
    """Move parked entries that are live and now >= t to the heap; drop dead ones."""
    kept = 0
    for w in range(waiting):
        if alive[wi[w, 0]] and alive[wi[w, 1]]:
            if wc[w] >= t:
                hc, hi, hx, size = _push(hc, hi, hx, size, wc[w], wi[w, 0], wi[w, 1], wi[w, 2], False)
            else:
                wc[kept], wi[kept, 0], wi[kept, 1], wi[kept, 2] = wc[w], wi[w, 0], wi[w, 1], wi[w, 2]
                kept += 1
    return kept, hc, hi, hx, size


@njit(cache=True, nogil=True)
def merge_levels(x, height, width, thresholds):  # pragma: no cover - compiled
    """Region id (L, H*W) int64 of every patch after each threshold; see the module docstring.

    x: (H*W, D) float64 C-contiguous patch features, row-major patches; it is used as scratch
    space (a merged region's sum overwrites one of its parts' rows), so pass a private copy.
    thresholds: (L,) float64. Also returns the number of live regions (L,) after each threshold.
    """
    n = height * width
    total = 2 * n - 1
    sums = x
    row, norms, pair_val, pool_id, pool_pair, start, length, pos, hc, hi, hx, size = _initial_grid(
        x, height, width)
    late_id = np.empty(max(16, 8 * n), dtype=np.int64)
    late_pair = np.empty(max(16, 8 * n), dtype=np.int64)
    late_next = np.empty(max(16, 8 * n), dtype=np.int64)
    head = np.full(total, -1, dtype=np.int64)
    n_pairs, n_late = 2 * n, 0
    wc = np.empty(max(16, 4 * n))
    wi = np.empty((max(16, 4 * n), 3), dtype=np.int64)
    waiting = 0
    parent = np.full(total, -1, dtype=np.int64)
    alive = np.zeros(total, dtype=np.bool_)
    alive[:n] = True
    mark_a = np.full(total, -1, dtype=np.int64)
    mark_b = np.full(total, -1, dtype=np.int64)
    seen = np.full(total, -1, dtype=np.int64)
    val_a = np.empty(total)
    val_b = np.empty(total)
    union = np.empty(total, dtype=np.int64)
    n_alive, next_id = n, n
    levels = thresholds.shape[0]
    roots = np.empty((levels, n), dtype=np.int64)
    live = np.empty(levels, dtype=np.int64)
    for li in range(levels):
        t = thresholds[li]
        waiting, hc, hi, hx, size = _unpark(wc, wi, waiting, alive, t, hc, hi, hx, size)
        while size > 0 and hc[0] >= t:
            c_ab, a, b, p_ab, exact = hc[0], hi[0, 0], hi[0, 1], hi[0, 2], hx[0]
            size = _pop(hc, hi, hx, size)
            if not (alive[a] and alive[b]):
                continue
            if not exact:
                c = _cosine(sums, row, norms, a, b)
                pair_val[p_ab] = c
                hc, hi, hx, size = _push(hc, hi, hx, size, c, a, b, p_ab, True)
                continue
            m = next_id
            next_id += 1
            ra, rb = row[a], row[b]
            s = 0.0
            for d in range(sums.shape[1]):
                v = sums[ra, d] + sums[rb, d]
                sums[ra, d] = v
                s += v * v
            norms[m] = np.sqrt(s)
            row[m] = ra
            cda, sda = _drift(norms, a, b, m, c_ab)
            cdb, sdb = _drift(norms, b, a, m, c_ab)
            parent[a] = m
            parent[b] = m
            alive[a] = False
            alive[b] = False
            alive[m] = True
            n_alive -= 1
            adj = (pool_id, pool_pair, start, length, late_id, late_pair, late_next, head)
            nu = _collect(a, m, adj, alive, pair_val, mark_a, val_a, seen, union, 0)
            nu = _collect(b, m, adj, alive, pair_val, mark_b, val_b, seen, union, nu)
            pool_id = _grow_int(pool_id, pos + nu)
            pool_pair = _grow_int(pool_pair, pos + nu)
            late_id = _grow_int(late_id, n_late + nu)
            late_pair = _grow_int(late_pair, n_late + nu)
            late_next = _grow_int(late_next, n_late + nu)
            pair_val = _grow_float(pair_val, n_pairs + nu)
            start[m], length[m] = pos, nu
            for u in range(nu):
                k = union[u]
                ub = 1.0
                if mark_a[k] == m:
                    ub = min(ub, _bound(val_a[k], cda, sda))
                if mark_b[k] == m:
                    ub = min(ub, _bound(val_b[k], cdb, sdb))
                pair_val[n_pairs] = ub
                pool_id[pos], pool_pair[pos] = k, n_pairs
                pos += 1
                late_id[n_late], late_pair[n_late], late_next[n_late] = m, n_pairs, head[k]
                head[k] = n_late
                n_late += 1
                if ub >= t:
                    hc, hi, hx, size = _push(hc, hi, hx, size, ub, k, m, n_pairs, False)
                else:  # park until the next level
                    if waiting == wc.shape[0]:
                        wc = np.concatenate((wc, np.empty_like(wc)))
                        wi = np.concatenate((wi, np.empty_like(wi)))
                    wc[waiting], wi[waiting, 0], wi[waiting, 1], wi[waiting, 2] = ub, k, m, n_pairs
                    waiting += 1
                n_pairs += 1
        for i in range(n):
            roots[li, i] = _find(parent, i)
        live[li] = n_alive
    return roots, live
