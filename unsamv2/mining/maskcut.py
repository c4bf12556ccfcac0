"""Divide: MaskCut instance discovery on a patch-feature grid (docs/architecture.md#mining-divide, after CutLER).

One round, on the patches not yet taken:

1. Affinity: W_ij = 1 if cos(f_i, f_j) > tau else eps (taken patches have zero features, so all
   their affinities are eps). Degrees d = W 1.
2. Normalized cut: the second-smallest generalized eigenvector x of (D - W) x = lambda D x. It is
   solved in the symmetric normalised form: y = D^(1/2) x is the eigenvector of the second-largest
   eigenvalue of D^(-1/2) W D^(-1/2), found by ARPACK (Lanczos, ``scipy.sparse.linalg.eigsh``)
   with matrix-vector products in torch (CPU or CUDA) on the binary affinity; no dense
   generalized solver. Its sign is fixed so that the largest-|x| entry is positive.
3. Split at the mean: foreground = x > mean(x). Flip it when 3 or 4 of the grid corners are
   foreground (otherwise the largest-|x| patch, the seed, is foreground by the sign convention).
   The seed is argmax(x), or argmin(x) after a flip.
4. Keep the 4-connected component of the foreground that contains the seed.
5. Drop the mask if its IoU with an earlier kept mask is > ``max_iou`` or its area is <=
   ``min_area`` of the grid; either way its patches are taken for the next rounds (so a round
   never repeats the previous one). A kept mask excludes the patches taken before it, so the
   outputs are disjoint.

Taken patches leave the next rounds in one of two ways (``masking``): ``"remove"`` (default)
solves the cut on the untaken patches only; ``"zero"`` zeroes their features like the CutLER
code, which keeps them in the graph with eps affinities. With "zero", once the taken area is
large the best cut is "taken vs. untaken", the component then overlaps the earlier masks and
every later round is dropped by the IoU rule; see docs/mining.md for the measured difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unsamv2.errors import InputError

EPS_AFFINITY = 1e-5


@dataclass(frozen=True)
class MaskCutResult:
    """Masks (K, h, w) bool found on the patch grid, in discovery order, and their round index."""

    masks: np.ndarray
    rounds: tuple[int, ...]


def _check(features: np.ndarray, tau: float, rounds: int) -> np.ndarray:
    arr = np.asarray(features)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise InputError(f"MaskCut features must be an (h, w, D) array, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError("MaskCut features contain NaN or infinite values; check the backbone.")
    if not 0.0 <= tau < 1.0:
        raise InputError(f"MaskCut tau must lie in [0, 1), got {tau}.")
    if rounds < 1:
        raise InputError(f"MaskCut needs at least 1 round, got {rounds}.")
    return arr


def binary_affinity(features: np.ndarray, tau: float, device: str = "cpu"):  # -> torch.Tensor
    """(N, N) float32 torch tensor: 1 where the cosine of two patches exceeds tau, else 0.

    The Gram matrix is symmetric: only its upper block triangle is multiplied (block rows of 600
    patches against the rest) and mirrored, about 0.6x the multiply-adds of ``x @ x.T``, same bits.
    """
    import torch

    x = torch.as_tensor(features.reshape(-1, features.shape[-1]), dtype=torch.float32, device=device)
    x = torch.nn.functional.normalize(x, dim=1)
    n, block = x.shape[0], 600
    out = torch.empty((n, n), dtype=torch.float32, device=device)
    for i in range(0, n, block):
        above = (x[i : i + block] @ x[i:].T > tau).to(torch.float32)
        out[i : i + block, i:] = above
        out[i:, i : i + block] = above.T
    return out


def second_eigenvector(
    affinity,
    active: np.ndarray | None = None,
    untaken: np.ndarray | None = None,
    eps: float = EPS_AFFINITY,
    seed: int = 0,
) -> np.ndarray:
    """Second-smallest generalized eigenvector x (M,) float64 of (D - W) x = lambda D x.

    ``affinity`` is the (N, N) binary torch tensor B (CPU or CUDA), never modified. The graph is
    the node indices ``active`` (M,) (all N when None); nodes outside ``untaken`` (N,) bool (all
    when None) keep their place but lose their binary affinities (zeroed features), so on the
    active nodes W = B' + eps (1 - B') with B' = B masked by ``untaken`` on both sides.

    Solved in the symmetric normalised form: y = D^(1/2) x is the top eigenvector of
    D^(-1/2) W D^(-1/2) - 2 u u^T, where u = D^(1/2) 1 / |D^(1/2) 1| is the known eigenvector of
    the largest eigenvalue (1), moved to -1 (ARPACK Lanczos, k=1, matrix-vector products in torch).
    The sign is normalised so that the entry of largest magnitude is positive. Deterministic.
    """
    import torch
    from scipy.sparse.linalg import LinearOperator, eigsh

    n_all = affinity.shape[0]
    idx = np.arange(n_all) if active is None else np.asarray(active, dtype=np.int64)
    n = idx.size
    if n < 3:
        raise InputError(f"MaskCut needs at least 3 patches, got {n}; use a larger grid.")
    device, scale = affinity.device, 1.0 - eps
    gate = np.zeros(n_all, dtype=np.float32)
    gate[idx] = 1.0
    if untaken is not None:
        gate *= np.asarray(untaken, dtype=np.float32).reshape(-1)
    gate_t = torch.as_tensor(gate, device=device)
    sel = torch.as_tensor(idx, device=device)
    gate_sel = gate[idx].astype(np.float64)
    deg = scale * gate_sel * (affinity @ gate_t)[sel].double().cpu().numpy() + eps * n
    inv_sqrt = 1.0 / np.sqrt(deg)
    top = np.sqrt(deg) / np.linalg.norm(np.sqrt(deg))
    full_vec = torch.zeros(n_all, dtype=torch.float32, device=device)

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        u = inv_sqrt * v
        full_vec.zero_()
        full_vec[sel] = torch.as_tensor(u, dtype=torch.float32, device=device)
        bu = (affinity @ (full_vec * gate_t))[sel].double().cpu().numpy() * gate_sel
        return inv_sqrt * (scale * bu + eps * u.sum()) - 2.0 * top * (top @ v)

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    _, vecs = eigsh(op, k=1, which="LA", v0=v0, ncv=min(n, 10), tol=1e-7, maxiter=max(2000, 20 * n))
    x = inv_sqrt * vecs[:, 0]
    if x[int(np.argmax(np.abs(x)))] < 0:
        x = -x
    return x


def foreground_component(x: np.ndarray, shape: tuple[int, int], active: np.ndarray | None = None) -> np.ndarray:
    """The seed's 4-connected foreground component (h, w) bool.

    ``x`` (M,) is the eigenvector on the ``active`` flat patch indices (all patches when None);
    patches outside ``active`` are never foreground. Foreground = x > mean(x), flipped (within
    the active patches) when >= 3 grid corners are foreground; the seed is argmax(x), or
    argmin(x) after a flip.
    """
    from scipy import ndimage

    idx = np.arange(shape[0] * shape[1]) if active is None else np.asarray(active)
    fg = np.zeros(shape[0] * shape[1], dtype=bool)
    fg[idx] = x > x.mean()
    fg = fg.reshape(shape)
    corners = int(fg[0, 0]) + int(fg[0, -1]) + int(fg[-1, 0]) + int(fg[-1, -1])
    if corners >= 3:
        flipped = np.zeros(shape[0] * shape[1], dtype=bool)
        flipped[idx] = ~fg.reshape(-1)[idx]
        fg = flipped.reshape(shape)
        seed = int(idx[int(np.argmin(x))])
    else:
        seed = int(idx[int(np.argmax(x))])
    sy, sx = divmod(seed, shape[1])
    if not fg[sy, sx]:
        return np.zeros(shape, dtype=bool)
    labels, _ = ndimage.label(fg)
    return labels == labels[sy, sx]


def maskcut(
    features: np.ndarray,
    tau: float = 0.15,
    rounds: int = 3,
    *,
    max_iou: float = 0.5,
    min_area: float = 0.01,
    masking: str = "remove",
    round_rule: str = "strict",
    eps: float = EPS_AFFINITY,
    device: str = "cpu",
) -> MaskCutResult:
    """Run MaskCut on features (h, w, D); see the module docstring for every rule.

    ``masking`` says how taken patches leave later rounds: ``"remove"`` (default) drops them
    from the graph; ``"zero"`` zeroes their features as the CutLER code does, so they stay in the
    graph with eps affinities and can re-enter a later component. ``round_rule`` says which
    patches are taken and what a mask is compared with: ``"strict"`` (default) takes every
    round's mask, kept or dropped, and compares with every kept mask, area rule in every round;
    ``"cutler"`` is CutLER's loop: only a kept mask is taken, a new mask is compared with the
    previous round's result only, the area rule starts at round 2, and each output is its mask
    minus the earlier outputs.
    """
    feats = _check(features, tau, rounds)
    if masking not in ("remove", "zero"):
        raise InputError(f"MaskCut masking must be 'remove' or 'zero', got {masking!r}.")
    if round_rule not in ("strict", "cutler"):
        raise InputError(f"MaskCut round_rule must be 'strict' or 'cutler', got {round_rule!r}.")
    full = binary_affinity(feats, tau, device)  # computed once; rounds mask it, never modify it
    run = _rounds_cutler if round_rule == "cutler" else _rounds_strict
    kept, kept_rounds = run(full, feats.shape[:2], rounds, max_iou, min_area, masking, eps)
    masks = np.stack(kept) if kept else np.zeros((0, *feats.shape[:2]), dtype=bool)
    return MaskCutResult(masks=masks, rounds=tuple(kept_rounds))


def _cut(full, shape: tuple[int, int], taken: np.ndarray, masking: str, eps: float) -> np.ndarray | None:  # noqa: ANN001
    """One round's seed component given the taken patches, or None when too few patches are left."""
    active = np.flatnonzero(~taken.ravel()) if masking == "remove" else None
    if active is not None and active.size < 3:
        return None
    x = second_eigenvector(full, active, None if masking == "remove" else ~taken, eps)
    return foreground_component(x, shape, active)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _rounds_strict(full, shape, rounds, max_iou, min_area, masking, eps):  # noqa: ANN001, ANN202
    taken = np.zeros(shape, dtype=bool)
    kept, raws, kept_rounds = [], [], []
    for r in range(rounds):
        raw = _cut(full, shape, taken, masking, eps)
        if raw is None:
            break
        newly = raw & ~taken
        if raw.mean() > min_area and all(_iou(raw, m) <= max_iou for m in raws) and newly.any():
            kept.append(newly)
            raws.append(raw)
            kept_rounds.append(r)
        if not newly.any():
            break  # nothing new: every later round would repeat this one
        taken |= raw
    return kept, kept_rounds


def _rounds_cutler(full, shape, rounds, max_iou, min_area, masking, eps):  # noqa: ANN001, ANN202
    painting = np.zeros(shape, dtype=bool)  # CutLER's "painting": the kept masks so far
    union = np.zeros(shape, dtype=bool)
    previous = np.zeros(shape, dtype=bool)
    kept, kept_rounds = [], []
    for r in range(rounds):
        painting |= previous  # a dropped round contributed an empty mask: its patches stay
        raw = _cut(full, shape, painting, masking, eps)
        if raw is None:
            break
        if r >= 1 and (_iou(previous, raw) > max_iou or raw.mean() <= min_area):
            raw = np.zeros(shape, dtype=bool)
        previous = raw
        newly = raw & ~union
        union |= raw
        if newly.any():
            kept.append(newly)
            kept_rounds.append(r)
    return kept, kept_rounds
