"""Compiled (numba) kernel of :func:`unsamv2.mining.merging.merge_regions`.

Same rule and tie-breaking as the module docstring of :mod:`unsamv2.mining.merging`; this is a
binary heap with lazy invalidation plus a union-find over region ids, in machine code:

* heap entries are (key, a, b, exact) with a < b; the entry with the highest key, then the
  smallest a, then the smallest b, is on top. An entry whose a or b is no longer a live region is
  skipped when popped (ids are never reused, so a live pair's similarity never changes).
* lazy evaluation: when a and b merge into m, the similarity of m to each neighbour k is not
  computed; the entry is pushed with a rigorous upper bound instead. Angles obey the triangle
  inequality, so angle(m, k) >= angle(a, k) - angle(a, m), where angle(a, m) follows from scalars
  already known; a small margin covers rounding. A bound entry that reaches the top is evaluated
  exactly and pushed back. Because every key is >= the true similarity of its pair and exact keys
  are equal to it, the first *exact* entry on top is the true maximum, with the same tie-breaking
  as evaluating everything eagerly. Only pairs that come near the top ever cost a D-dim dot.
* every region keeps a list of neighbour ids in a growing pool; ids in it may have been merged
  since, and are resolved through the union-find when the region itself is merged.
* a region has a neighbour iff more than one region is left (the grid is connected), so a level
  is "every live region with >= min_size patches, unless only one region is left".

Importing this module compiles nothing; the first call compiles (and caches on disk when it can).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _before(c1, a1, b1, c2, a2, b2):  # pragma: no cover - compiled
    """True when heap entry 1 must come out before entry 2."""
    if c1 != c2:
        return c1 > c2
    if a1 != a2:
        return a1 < a2
    return b1 < b2


@njit(cache=True, nogil=True)
def _push(hc, ha, hb, hx, size, c, a, b, exact):  # pragma: no cover - compiled
    if size == hc.shape[0]:
        hc = np.concatenate((hc, np.empty_like(hc)))
        ha = np.concatenate((ha, np.empty_like(ha)))
        hb = np.concatenate((hb, np.empty_like(hb)))
        hx = np.concatenate((hx, np.empty_like(hx)))
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if _before(c, a, b, hc[p], ha[p], hb[p]):
            hc[i], ha[i], hb[i], hx[i] = hc[p], ha[p], hb[p], hx[p]
            i = p
        else:
            break
    hc[i], ha[i], hb[i], hx[i] = c, a, b, exact
    return hc, ha, hb, hx, size + 1


@njit(cache=True, nogil=True)
def _pop(hc, ha, hb, hx, size):  # pragma: no cover - compiled
    """Remove the top entry; returns the new size."""
    size -= 1
    c, a, b, e = hc[size], ha[size], hb[size], hx[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _before(hc[right], ha[right], hb[right], hc[child], ha[child], hb[child]):
            child = right
        if _before(hc[child], ha[child], hb[child], c, a, b):
            hc[i], ha[i], hb[i], hx[i] = hc[child], ha[child], hb[child], hx[child]
            i = child
        else:
            break
    if size > 0:
        hc[i], ha[i], hb[i], hx[i] = c, a, b, e
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
def _cosine(sums, slot, norms, ia, ja):  # pragma: no cover - compiled
    """Cosine between the feature sums of regions ia and ja; 0 when either sum is zero."""
    i, j = slot[ia], slot[ja]
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


_SLACK = 1e-9  # added to every bound; far above the float64 rounding of the quantities involved


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


_EMPTY = -1
_GONE = -2


@njit(cache=True, nogil=True)
def _slot(keys, key):  # pragma: no cover - compiled
    """Index of ``key`` in the open-addressing table, or of the empty slot where it would go."""
    mask = keys.shape[0] - 1
    i = (key * 0x9E3779B97F4A7C15) >> 17 & mask
    first_gone = -1
    while True:
        k = keys[i]
        if k == key:
            return i
        if k == _EMPTY:
            return first_gone if first_gone >= 0 else i
        if k == _GONE and first_gone < 0:
            first_gone = i
        i = (i + 1) & mask


@njit(cache=True, nogil=True)
def _table_put(keys, vals, used, key, val):  # pragma: no cover - compiled
    """Insert or overwrite; grows (rehashes) when more than half the slots were ever used."""
    i = _slot(keys, key)
    if keys[i] != key:
        if keys[i] == _EMPTY:
            used += 1
        keys[i] = key
    vals[i] = val
    if 2 * used > keys.shape[0]:
        live = 0
        for j in range(keys.shape[0]):
            if keys[j] >= 0:
                live += 1
        cap = keys.shape[0]
        while cap < 4 * live + 64:
            cap *= 2
        new_keys = np.full(cap, _EMPTY, dtype=np.int64)
        new_vals = np.empty(cap)
        for j in range(keys.shape[0]):
            if keys[j] >= 0:
                t = _slot(new_keys, keys[j])
                new_keys[t] = keys[j]
                new_vals[t] = vals[j]
        return new_keys, new_vals, live
    return keys, vals, used


@njit(cache=True, nogil=True)
def _table_take(keys, vals, key):  # pragma: no cover - compiled
    """Remove ``key`` and return its value, or 2.0 (no bound) when absent."""
    i = _slot(keys, key)
    if keys[i] != key:
        return 2.0
    keys[i] = _GONE
    return vals[i]


@njit(cache=True, nogil=True)
def _init(x, height, width):  # pragma: no cover - compiled
    n = height * width
    dim = x.shape[1]
    total = 2 * n - 1
    norms = np.empty(total)
    for i in range(n):
        s = 0.0
        for d in range(dim):
            s += x[i, d] * x[i, d]
        norms[i] = np.sqrt(s)
    pool = np.empty(max(16, 8 * n), dtype=np.int64)
    start = np.zeros(total, dtype=np.int64)
    length = np.zeros(total, dtype=np.int64)
    pos = 0
    for i in range(n):
        y, xx = i // width, i % width
        start[i] = pos
        for j in (i - width, i - 1, i + 1, i + width):
            if (j == i - width and y > 0) or (j == i - 1 and xx > 0) or (
                j == i + 1 and xx < width - 1) or (j == i + width and y < height - 1):
                pool[pos] = j
                pos += 1
        length[i] = pos - start[i]
    return norms, pool, start, length, pos


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
    slot = np.empty(total, dtype=np.int64)  # row of ``sums`` that holds a region's feature sum
    slot[:n] = np.arange(n)
    norms, pool, start, length, pos = _init(x, height, width)
    cap = max(16, 4 * n)
    hc = np.empty(cap)
    ha = np.empty(cap, dtype=np.int64)
    hb = np.empty(cap, dtype=np.int64)
    hx = np.empty(cap, dtype=np.bool_)
    size = 0
    # entries whose key is below the current threshold wait here until the next level
    wc = np.empty(cap)
    wa = np.empty(cap, dtype=np.int64)
    wb = np.empty(cap, dtype=np.int64)
    waiting = 0
    keys = np.full(1 << max(6, int(np.ceil(np.log2(16 * n + 64)))), _EMPTY, dtype=np.int64)
    vals = np.empty(keys.shape[0])
    used = 0
    for i in range(n):
        for idx in range(start[i], start[i] + length[i]):
            j = pool[idx]
            if j > i:
                c = _cosine(sums, slot, norms, i, j)
                keys, vals, used = _table_put(keys, vals, used, i * total + j, c)
                hc, ha, hb, hx, size = _push(hc, ha, hb, hx, size, c, i, j, True)
    parent = np.full(total, -1, dtype=np.int64)
    alive = np.zeros(total, dtype=np.bool_)
    alive[:n] = True
    mark = np.full(total, -1, dtype=np.int64)
    n_alive = n
    next_id = n
    levels = thresholds.shape[0]
    roots = np.empty((levels, n), dtype=np.int64)
    live = np.empty(levels, dtype=np.int64)
    for li in range(levels):
        t = thresholds[li]
        kept = 0
        for w in range(waiting):  # bring back the parked entries that are still live
            if alive[wa[w]] and alive[wb[w]]:
                if wc[w] >= t:
                    hc, ha, hb, hx, size = _push(hc, ha, hb, hx, size, wc[w], wa[w], wb[w], False)
                else:
                    wc[kept], wa[kept], wb[kept] = wc[w], wa[w], wb[w]
                    kept += 1
        waiting = kept
        while size > 0 and hc[0] >= t:
            c_ab, a, b, exact = hc[0], ha[0], hb[0], hx[0]
            size = _pop(hc, ha, hb, hx, size)
            if not (alive[a] and alive[b]):
                continue
            if not exact:
                c = _cosine(sums, slot, norms, a, b)
                keys, vals, used = _table_put(keys, vals, used, a * total + b, c)
                hc, ha, hb, hx, size = _push(hc, ha, hb, hx, size, c, a, b, True)
                continue
            m = next_id
            next_id += 1
            ra, rb = slot[a], slot[b]
            s = 0.0
            for d in range(sums.shape[1]):
                v = sums[ra, d] + sums[rb, d]
                sums[ra, d] = v
                s += v * v
            norms[m] = np.sqrt(s)
            slot[m] = ra
            cda, sda = _drift(norms, a, b, m, c_ab)
            cdb, sdb = _drift(norms, b, a, m, c_ab)
            parent[a] = m
            parent[b] = m
            alive[a] = False
            alive[b] = False
            alive[m] = True
            n_alive -= 1
            _table_take(keys, vals, a * total + b)
            need = pos + length[a] + length[b]
            if need > pool.shape[0]:
                pool = np.concatenate((pool, np.empty(max(need, pool.shape[0]), dtype=np.int64)))
            start[m] = pos
            mark[m] = m
            for src in (a, b):
                for idx in range(start[src], start[src] + length[src]):
                    k = _find(parent, pool[idx])
                    if mark[k] != m:
                        mark[k] = m
                        pool[pos] = k
                        pos += 1
            length[m] = pos - start[m]
            for idx in range(start[m], pos):
                k = pool[idx]
                ub = 1.0
                prev = _table_take(keys, vals, min(a, k) * total + max(a, k))
                if prev <= 1.0:
                    ub = min(ub, _bound(prev, cda, sda))
                prev = _table_take(keys, vals, min(b, k) * total + max(b, k))
                if prev <= 1.0:
                    ub = min(ub, _bound(prev, cdb, sdb))
                keys, vals, used = _table_put(keys, vals, used, k * total + m, ub)
                if ub >= t:
                    hc, ha, hb, hx, size = _push(hc, ha, hb, hx, size, ub, k, m, False)
                else:
                    if waiting == wc.shape[0]:
                        wc = np.concatenate((wc, np.empty_like(wc)))
                        wa = np.concatenate((wa, np.empty_like(wa)))
                        wb = np.concatenate((wb, np.empty_like(wb)))
                    wc[waiting], wa[waiting], wb[waiting] = ub, k, m
                    waiting += 1
        for i in range(n):
            roots[li, i] = _find(parent, i)
        live[li] = n_alive
    return roots, live
