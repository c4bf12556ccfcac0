"""Compiled (numba) kernel of :func:`unsamv2.mining.merging.merge_regions`.

Same rule and tie-breaking as :mod:`unsamv2.mining.merging`; a two-level priority queue with
lazily evaluated similarities:

* lazy evaluation: when a and b merge into m, m's similarity to a neighbour k gets a rigorous
  upper bound instead of a D-dim dot: angle(m, k) >= angle(a, k) - angle(a, m) (triangle
  inequality on the sphere), angle(a, m) from known scalars, plus a slack for rounding. A bound
  that reaches the top is evaluated exactly. Keys are >= the true similarity and exact keys equal
  it, so the first *exact* pair on top is the true maximum, tie-breaking included.
* batches: every live pair sits in the *batch* (a binary heap; highest key, then the smallest
  neighbour id, on top) of one of its regions, the owner; neighbours are older than the owner,
  so this is the global (key, a, b) order. The global heap holds one entry per batch (its top).
  m *inherits* the larger batch of a and b: the bounds are raised in place by the same monotone
  rule, which keeps the heap order (checked; rebuilt if rounding broke a tie). Only the other
  side's pairs get new slots: a merge is one pass over the batch and one global push.
* adjacency without hashing: a slot records the pair's neighbour and batch; the neighbour's
  *late list* points at it. Entries whose region died are skipped (ids are never reused, so a
  pair of live ids never changes similarity); a dead late-list head is reused.
* patch rows are read from the input (float32 rows exactly converted on the fly, half the memory
  traffic); merged regions' sums live in float64 rows. Entries below the threshold wait in the
  heaps for a later level. A level is every live region with >= min_size patches, unless one
  region is left (the grid is connected, so a region has a neighbour iff two are left).

Importing compiles nothing; the first call compiles (cached on disk when possible). Helpers that
never allocate are compiled without reference counting (``_nrt=False``): they run once per pair
or heap step, where the counting would dominate.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SLACK = 1e-9  # added to every bound; far above the float64 rounding of the quantities involved

R_ROW, R_PARENT, R_HEAD, R_BATCH = 0, 1, 2, 3  # regions: msum row, merged into, late list, batch
B_OWNER, B_START, B_SIZE, B_CAP = 0, 1, 2, 3  # batches: owner region, heap segment
S_NBR, S_BATCH, S_VER = 0, 1, 2  # slots: neighbour, batch, owner id when evaluated exactly
L_SLOT, L_NEXT = 0, 1  # late-list nodes
M_HEIR, M_SEEN = 0, 1  # scratch stamps: "in the inherited batch", "among the new pairs"
# Positions in the state tuple ``st``: patch rows (read only), merged regions' float64 sums, the
# tables above, norms, liveness, the global heap (key, (a, b)), scratch.
T_X, T_MSUM, T_REG, T_BATCH, T_NORM, T_ALIVE, T_GKEY, T_GID, T_MARK, T_VAL, T_UNION = range(11)
_FAST = {"cache": True, "nogil": True, "_nrt": False}


@njit(fastmath={"reassoc"}, **_FAST)
def _dot(u, v):  # pragma: no cover - compiled
    """Dot product of two 1-D float rows in float64 (vectorised; a fixed order per machine)."""
    s = 0.0
    for d in range(u.shape[0]):
        s += np.float64(u[d]) * np.float64(v[d])
    return s


@njit(**_FAST)
def _cosine(st, i, j):  # pragma: no cover - compiled
    """Cosine between the feature sums of regions i and j; 0 when either sum is zero."""
    x, msum, reg, norms = st[T_X], st[T_MSUM], st[T_REG], st[T_NORM]
    n = x.shape[0]
    if i < n and j < n:
        dot = _dot(x[i], x[j])
    elif i < n:
        dot = _dot(msum[reg[j, R_ROW]], x[i])
    elif j < n:
        dot = _dot(msum[reg[i, R_ROW]], x[j])
    else:
        dot = _dot(msum[reg[i, R_ROW]], msum[reg[j, R_ROW]])
    return dot / max(norms[i] * norms[j], 1e-300)


@njit(**_FAST)
def _drift(norms, a, b, m, cos_ab):  # pragma: no cover - compiled
    """(cos, sin) of the angle between the sums of a and m = a + b; (-1, 0) if undefined."""
    na, nm = norms[a], norms[m]
    if na * nm <= 0.0:
        return -1.0, 0.0
    c = min(1.0, max(-1.0, (na * na + cos_ab * na * norms[b]) / (na * nm)))
    return c, np.sqrt(max(0.0, 1.0 - c * c))


@njit(**_FAST)
def _bound(upper, cd, sd):  # pragma: no cover - compiled
    """Upper bound on cos(m, k) from an upper bound on cos(a, k) and (cos, sin) of angle(a, m).

    angle(m, k) >= angle(a, k) - angle(a, m), and cos decreases on [0, pi]: cos(m, k) is at most
    cos of that difference when it is >= 0 (upper <= cd), else at most 1. Monotone in upper.
    """
    u = min(1.0, max(-1.0, upper))
    if u >= cd:
        return 1.0
    return min(1.0, u * cd + np.sqrt(max(0.0, 1.0 - u * u)) * sd + _SLACK)


@njit(**_FAST)
def _before(c1, a1, b1, c2, a2, b2):  # pragma: no cover - compiled
    """Heap order: (c1, a1, b1) comes out before (c2, a2, b2) (highest c, then smallest a, b)."""
    if c1 != c2:
        return c1 > c2
    if a1 != a2:
        return a1 < a2
    return b1 < b2


@njit(**_FAST)
def _push(key, ids, base, size, c, a, b):  # pragma: no cover - compiled
    """Add (c, a, b) to the heap key/ids[base : base + size]; returns the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        q = base + p
        if not _before(c, a, b, key[q], ids[q, 0], ids[q, 1]):
            break
        key[base + i], ids[base + i, 0], ids[base + i, 1] = key[q], ids[q, 0], ids[q, 1]
        i = p
    key[base + i], ids[base + i, 0], ids[base + i, 1] = c, a, b
    return size + 1


@njit(**_FAST)
def _down(key, ids, base, size, i):  # pragma: no cover - compiled
    """Restore the order of the heap key/ids[base : base + size] below position i."""
    c, a, b = key[base + i], ids[base + i, 0], ids[base + i, 1]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        q = base + child
        if child + 1 < size and _before(key[q + 1], ids[q + 1, 0], ids[q + 1, 1],
                                        key[q], ids[q, 0], ids[q, 1]):
            child, q = child + 1, q + 1
        if not _before(key[q], ids[q, 0], ids[q, 1], c, a, b):
            break
        key[base + i], ids[base + i, 0], ids[base + i, 1] = key[q], ids[q, 0], ids[q, 1]
        i = child
    key[base + i], ids[base + i, 0], ids[base + i, 1] = c, a, b


@njit(**_FAST)
def _pop(key, ids, base, size):  # pragma: no cover - compiled
    """Remove the top of the heap key/ids[base : base + size]; returns the new size."""
    size -= 1
    if size > 0:
        key[base], ids[base, 0], ids[base, 1] = key[base + size], ids[base + size, 0], ids[base + size, 1]
        _down(key, ids, base, size, 0)
    return size


@njit(cache=True, nogil=True)
def _grown(arr, need):  # pragma: no cover - compiled
    """``arr`` with at least ``need`` rows (doubling; contents kept)."""
    if need <= arr.shape[0]:
        return arr
    out = np.empty((max(need, 2 * arr.shape[0]),) + arr.shape[1:], dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(cache=True, nogil=True)
def _ensure(g, n_slots, h_end, n_late):  # pragma: no cover - compiled
    """Growable arrays g = (slots, sval, hkey, hid, late) with room for the given counts."""
    slots, sval, hkey, hid, late = g
    return (_grown(slots, n_slots), _grown(sval, n_slots), _grown(hkey, h_end),
            _grown(hid, h_end), _grown(late, n_late))


@njit(**_FAST)
def _link(k, slot, st, g, n_late):  # pragma: no cover - compiled
    """Put ``slot`` (k's pair in another batch) on k's late list, reusing a dead head node."""
    reg, batches, alive = st[T_REG], st[T_BATCH], st[T_ALIVE]
    slots, late = g[0], g[4]
    node = reg[k, R_HEAD]
    if node >= 0 and not alive[batches[slots[late[node, L_SLOT], S_BATCH], B_OWNER]]:
        late[node, L_SLOT] = slot
        return n_late
    late[n_late, L_SLOT], late[n_late, L_NEXT] = slot, node
    reg[k, R_HEAD] = n_late
    return n_late + 1


@njit(**_FAST)
def _append(bid, k, value, ver, st, g, n_slots, h_end, n_late):  # pragma: no cover - compiled
    """New slot for pair (k, owner of batch bid) with ``value`` (exact if ver is the owner), in
    the batch's heap (moved to a twice larger segment when full) and on k's late list. g must
    have room (:func:`_ensure`). Returns (n_slots, h_end, n_late)."""
    batches = st[T_BATCH]
    slots, sval, hkey, hid = g[0], g[1], g[2], g[3]
    slots[n_slots, S_NBR], slots[n_slots, S_BATCH], slots[n_slots, S_VER] = k, bid, ver
    sval[n_slots] = value
    base, size, cap = batches[bid, B_START], batches[bid, B_SIZE], batches[bid, B_CAP]
    if size == cap:
        for i in range(size):
            hkey[h_end + i], hid[h_end + i, 0], hid[h_end + i, 1] = hkey[base + i], hid[base + i, 0], hid[base + i, 1]
        base, cap = h_end, max(4, 2 * cap)
        h_end += cap
        batches[bid, B_START], batches[bid, B_CAP] = base, cap
    batches[bid, B_SIZE] = _push(hkey, hid, base, size, value, k, n_slots)
    return n_slots + 1, h_end, _link(k, n_slots, st, g, n_late)


@njit(cache=True, nogil=True)
def _initial_grid(height, width, st):  # pragma: no cover - compiled
    """Norms, batches (left and upper neighbour, exact) and global heap of the patch grid.

    Returns (g, n_slots, h_end, n_late, gsize), g = (slots, sval, hkey, hid, late) growable.
    """
    x, reg, batches, norms, alive = st[T_X], st[T_REG], st[T_BATCH], st[T_NORM], st[T_ALIVE]
    n = height * width
    g = (np.empty((max(16, 4 * n), 3), dtype=np.int64), np.empty(max(16, 4 * n)),
         np.empty(max(16, 16 * n)), np.empty((max(16, 16 * n), 2), dtype=np.int64),
         np.empty((max(16, 4 * n), 2), dtype=np.int64))
    for i in range(n):
        reg[i, R_ROW], reg[i, R_PARENT], reg[i, R_HEAD], reg[i, R_BATCH] = -1, -1, -1, i
        batches[i, B_OWNER], batches[i, B_START], batches[i, B_SIZE], batches[i, B_CAP] = i, 4 * i, 0, 4
        norms[i] = np.sqrt(_dot(x[i], x[i]))
        alive[i] = True
    n_slots, h_end, n_late, gsize = 0, 4 * n, 0, 0
    for i in range(n):
        for k in (i - 1 if i % width > 0 else -1, i - width):
            if k >= 0:
                n_slots, h_end, n_late = _append(i, k, _cosine(st, k, i), i, st, g, n_slots, h_end, n_late)
        if batches[i, B_SIZE] > 0:
            top = batches[i, B_START]
            gsize = _push(st[T_GKEY], st[T_GID], 0, gsize, g[2][top], g[3][top, 0], i)
    return g, n_slots, h_end, n_late, gsize


@njit(**_FAST)
def _rebuild(bid, st, g):  # pragma: no cover - compiled
    """Drop the entries with a dead neighbour from batch bid and re-heapify it."""
    batches, alive = st[T_BATCH], st[T_ALIVE]
    hkey, hid = g[2], g[3]
    base, j = batches[bid, B_START], 0
    for i in range(base, base + batches[bid, B_SIZE]):
        if alive[hid[i, 0]]:
            hkey[base + j], hid[base + j, 0], hid[base + j, 1] = hkey[i], hid[i, 0], hid[i, 1]
            j += 1
    for i in range(j // 2 - 1, -1, -1):
        _down(hkey, hid, base, j, i)
    batches[bid, B_SIZE] = j


@njit(**_FAST)
def _inherit(bid, m, cd, sd, st, g):  # pragma: no cover - compiled
    """Give batch bid (of a region merged into m, drift (cd, sd) towards m) to m, raising every
    bound in place; rebuild it if the heap order broke or most entries are dead. Stamps m in
    ``marks[:, M_HEIR]`` for every live neighbour."""
    batches, alive, marks = st[T_BATCH], st[T_ALIVE], st[T_MARK]
    sval, hkey, hid = g[1], g[2], g[3]
    base, size = batches[bid, B_START], batches[bid, B_SIZE]
    batches[bid, B_OWNER] = m
    broken, dead = False, 0
    for q in range(base, base + size):
        k = hid[q, 0]
        if alive[k]:
            marks[k, M_HEIR] = m
        else:
            dead += 1
        c = _bound(hkey[q], cd, sd)
        hkey[q], sval[hid[q, 1]] = c, c
        p = base + ((q - base - 1) >> 1)
        if q > base and _before(c, k, hid[q, 1], hkey[p], hid[p, 0], hid[p, 1]):
            broken = True
    if broken or 2 * dead > size + 8:
        _rebuild(bid, st, g)


@njit(**_FAST)
def _gather(r, m, cd, sd, own_batch, st, g, nu):  # pragma: no cover - compiled
    """Note bounds to m for the live neighbours of r (merged into m, drift (cd, sd)) that are not
    in m's inherited batch: from r's late list, and r's batch if ``own_batch`` (the smallest bound
    per neighbour wins). Returns the number noted (in ``union``)."""
    reg, batches, alive, marks, vals, union = st[T_REG], st[T_BATCH], st[T_ALIVE], st[T_MARK], st[T_VAL], st[T_UNION]
    slots, sval, hkey, hid, late = g
    q = batches[reg[r, R_BATCH], B_START]
    end = q + batches[reg[r, R_BATCH], B_SIZE] if own_batch else q
    node = reg[r, R_HEAD]
    while q < end or node >= 0:
        if q < end:
            k, v, q = hid[q, 0], hkey[q], q + 1
        else:
            s = late[node, L_SLOT]
            k, v, node = batches[slots[s, S_BATCH], B_OWNER], sval[s], late[node, L_NEXT]
        if not alive[k] or k == m or marks[k, M_HEIR] == m:
            continue
        if marks[k, M_SEEN] != m:
            marks[k, M_SEEN], vals[k], union[nu] = m, _bound(v, cd, sd), k
            nu += 1
        else:
            vals[k] = min(vals[k], _bound(v, cd, sd))
    return nu


@njit(**_FAST)
def _add_rows(dst, u, v):  # pragma: no cover - compiled
    """dst = u + v in float64 (dst may be u or v)."""
    for d in range(dst.shape[0]):
        dst[d] = np.float64(u[d]) + np.float64(v[d])


@njit(**_FAST)
def _merge_sums(st, a, b, m, free_row):  # pragma: no cover - compiled
    """Write the sum of m = a ∪ b (a < b) and its norm to the msum row of a merged part (a's,
    else b's) or, for two patches (at most n / 2 times), to a fresh one. Returns the next free."""
    x, msum, reg, norms = st[T_X], st[T_MSUM], st[T_REG], st[T_NORM]
    n = x.shape[0]
    if a >= n:  # then b > a is a merged region too
        row = reg[a, R_ROW]
        _add_rows(msum[row], msum[row], msum[reg[b, R_ROW]])
    elif b >= n:
        row = reg[b, R_ROW]
        _add_rows(msum[row], x[a], msum[row])
    else:
        row, free_row = free_row, free_row + 1
        _add_rows(msum[row], x[a], x[b])
    reg[m, R_ROW] = row
    norms[m] = np.sqrt(_dot(msum[row], msum[row]))
    return free_row


@njit(**_FAST)
def _merge_start(a, b, c_ab, m, st, g, free_row):  # pragma: no cover - compiled
    """Merge live regions a < b (similarity c_ab) into m: sums, liveness, m inherits the larger
    batch, the other pairs are noted for new slots. Returns (m's batch, pairs noted, free row)."""
    reg, batches, norms, alive = st[T_REG], st[T_BATCH], st[T_NORM], st[T_ALIVE]
    free_row = _merge_sums(st, a, b, m, free_row)
    h, o = a, b
    if batches[reg[b, R_BATCH], B_SIZE] > batches[reg[a, R_BATCH], B_SIZE]:
        h, o = b, a
    cdh, sdh = _drift(norms, h, o, m, c_ab)
    cdo, sdo = _drift(norms, o, h, m, c_ab)
    reg[a, R_PARENT], reg[b, R_PARENT], reg[m, R_PARENT], reg[m, R_HEAD] = m, m, -1, -1
    alive[a], alive[b], alive[m] = False, False, True
    bid = reg[h, R_BATCH]
    reg[m, R_BATCH] = bid
    _inherit(bid, m, cdh, sdh, st, g)
    nu = _gather(o, m, cdo, sdo, True, st, g, 0)
    return bid, _gather(h, m, cdh, sdh, False, st, g, nu), free_row


@njit(**_FAST)
def _visit(m, t, st, g, gsize):  # pragma: no cover - compiled
    """Work on live region m's batch, just taken off the global heap: drop pairs with a dead
    neighbour, evaluate bounds while the top pair beats the global top and t. Returns (k, c,
    gsize): k >= 0 when (k, m), exact similarity c, is the overall maximum (taken out: merge
    it); else k = -1 and the batch is back on the global heap (or empty)."""
    reg, batches, alive, gkey, gid = st[T_REG], st[T_BATCH], st[T_ALIVE], st[T_GKEY], st[T_GID]
    slots, sval, hkey, hid = g[0], g[1], g[2], g[3]
    bid = reg[m, R_BATCH]
    base, size = batches[bid, B_START], batches[bid, B_SIZE]
    while size > 0:
        c, k, s = hkey[base], hid[base, 0], hid[base, 1]
        if alive[k] and not (c >= t and (gsize == 0 or _before(c, k, m, gkey[0], gid[0, 0], gid[0, 1]))):
            batches[bid, B_SIZE] = size
            return -1, 0.0, _push(gkey, gid, 0, gsize, c, k, m)
        if alive[k] and slots[s, S_VER] != m:  # a bound on top: evaluate it
            c = _cosine(st, k, m)
            hkey[base], sval[s], slots[s, S_VER] = c, c, m
            _down(hkey, hid, base, size, 0)
            continue
        size = _pop(hkey, hid, base, size)  # a dead neighbour, or the exact maximum
        if alive[k]:
            batches[bid, B_SIZE] = size
            return k, c, gsize
    batches[bid, B_SIZE] = 0
    return -1, 0.0, gsize


@njit(**_FAST)
def _roots(reg, n, out):  # pragma: no cover - compiled
    """Current region id of every patch into ``out`` (n,), by path-compressing find."""
    for i in range(n):
        root = i
        while reg[root, R_PARENT] >= 0:
            root = reg[root, R_PARENT]
        x = i
        while reg[x, R_PARENT] >= 0 and reg[x, R_PARENT] != root:
            reg[x, R_PARENT], x = root, reg[x, R_PARENT]
        out[i] = root


@njit(cache=True, nogil=True)
def merge_levels(x, height, width, thresholds):  # pragma: no cover - compiled
    """Region id (L, H*W) int64 of every patch after each threshold; see the module docstring.

    x: (H*W, D) float32 or float64 C-contiguous patch features, row-major patches (read only).
    thresholds: (L,) float64. Also returns the number of live regions (L,) after each threshold.
    """
    n = height * width
    total = 2 * n - 1
    reg, batches = np.empty((total, 4), dtype=np.int64), np.empty((n, 4), dtype=np.int64)
    gkey, gid, alive = np.empty(total), np.empty((total, 2), dtype=np.int64), np.zeros(total, np.bool_)
    st = (x, np.empty((n // 2 + 1, x.shape[1])), reg, batches, np.empty(total), alive, gkey, gid,
          np.full((total, 2), -1, dtype=np.int64), np.empty(total), np.empty(total, dtype=np.int64))
    g, n_slots, h_end, n_late, gsize = _initial_grid(height, width, st)
    roots = np.empty((thresholds.shape[0], n), dtype=np.int64)
    live = np.empty(thresholds.shape[0], dtype=np.int64)
    next_id, free_row = n, 0
    for li in range(thresholds.shape[0]):
        while gsize > 0 and gkey[0] >= thresholds[li]:
            m = gid[0, 1]
            gsize = _pop(gkey, gid, 0, gsize)
            if not alive[m]:
                continue
            k, c, gsize = _visit(m, thresholds[li], st, g, gsize)
            if k < 0:
                continue
            bid, nu, free_row = _merge_start(k, m, c, next_id, st, g, free_row)
            need_h = h_end + 4 * (batches[bid, B_SIZE] + nu) + 16
            if n_slots + nu > g[0].shape[0] or need_h > g[2].shape[0] or n_late + nu > g[4].shape[0]:
                g = _ensure(g, n_slots + nu, need_h, n_late + nu)
            for u in range(nu):  # new slots for the pairs noted by _merge_start
                n_slots, h_end, n_late = _append(bid, st[T_UNION][u], st[T_VAL][st[T_UNION][u]], -1,
                                                 st, g, n_slots, h_end, n_late)
            if batches[bid, B_SIZE] > 0:  # m's batch on the global heap
                top = batches[bid, B_START]
                gsize = _push(gkey, gid, 0, gsize, g[2][top], g[3][top, 0], next_id)
            next_id += 1
        _roots(reg, n, roots[li])
        live[li] = 2 * n - next_id
    return roots, live
