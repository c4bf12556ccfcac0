"""MaskCut on a 60x60 patch grid, 3 rounds: unsamv2 (ARPACK on the normalised affinity, torch
products) vs. the dense generalized solver of the CutLER code (scipy.linalg.eigh(D - W, D)).

Usage: .venv/bin/python benchmarks/bench_maskcut.py [--repeats 5] [--threads 1] [--no-dense]

The affinity section compares, interleaved in one run, MaskCut with the blocked symmetric Gram
product (unsamv2) and with the plain ``x @ x.T`` (the previous implementation), on 768-d features.

Grids: descriptor features (D=28) of a procedural scene at 960 px (60x60 patches), and 768-d
features (the same descriptor through a fixed random projection, as in bench_merge.py). The
dense baseline runs the same rounds with the dense solver and must produce the same masks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dense_second_eigenvector(affinity, active=None, untaken=None, eps=1e-5, seed=0):
    """CutLER's solver: dense generalized eigh on (D - W, D), one round."""
    import scipy.linalg

    w = affinity.double().numpy()
    if untaken is not None:
        keep = np.asarray(untaken, dtype=np.float64).reshape(-1)
        w = w * keep[:, None] * keep[None, :]
    if active is not None:
        w = w[np.ix_(active, active)]
    w = w + eps * (1.0 - w)
    d = np.diag(w.sum(1))
    _, vecs = scipy.linalg.eigh(d - w, d, subset_by_index=[1, 1])
    x = vecs[:, 0]
    return -x if x[np.argmax(np.abs(x))] < 0 else x


def plain_affinity(features, tau, device="cpu"):
    """The previous binary affinity: the full Gram product ``x @ x.T``, thresholded."""
    import torch

    x = torch.nn.functional.normalize(torch.as_tensor(features.reshape(-1, features.shape[-1]),
                                                      dtype=torch.float32, device=device), dim=1)
    return (x @ x.T > tau).to(torch.float32)


def compare_affinity(mc, feats, repeats: int) -> None:
    """MaskCut 3 rounds with the blocked vs the plain Gram product, interleaved; same masks."""
    blocked = mc.binary_affinity
    cpu = {"blocked (unsamv2)": [], "plain x @ x.T": []}
    outs = {}
    for _ in range(repeats):
        for name, fn in (("blocked (unsamv2)", blocked), ("plain x @ x.T", plain_affinity)):
            mc.binary_affinity = fn
            try:
                _, c, outs[name] = timed(lambda: mc.maskcut(feats, tau=0.2, rounds=3), 1)
            finally:
                mc.binary_affinity = blocked
            cpu[name].append(c)
    same = all(np.array_equal(a, b) for a, b in zip(*(o.masks for o in outs.values()), strict=True))
    for name, values in cpu.items():
        print(f"{'60x60x768':>14} {name:<26} {'':>8} {statistics.median(values):8.3f}  (median CPU s of {repeats})")
    print(f"{'':>14} identical masks: {same}")


def timed(fn, repeats):
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    import torch

    from unsamv2.mining import maskcut as mc
    from unsamv2.mining.features import PatchDescriptor
    from unsamv2.scenes import generate_scene

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense baseline (slow)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scene = generate_scene(seed=3, size=960).image
    desc = PatchDescriptor(16).features(scene, 960)
    rng = np.random.default_rng(0)
    proj = rng.normal(size=(desc.shape[2], 768)) * 2.0
    wide = (np.tanh(desc @ proj) + 0.05 * rng.normal(size=desc.shape[:2] + (768,))).astype(np.float32)
    print(f"torch threads: {args.threads}")
    print(f"{'features':>14} {'solver':<26} {'wall s':>8} {'cpu s':>8} masks (area fractions)")
    for name, feats in (("60x60x28", desc), ("60x60x768", wide)):
        results = {}
        solvers = [("ARPACK (unsamv2)", mc.second_eigenvector)]
        if not args.no_dense:
            solvers.append(("dense eigh (CutLER)", dense_second_eigenvector))
        for solver, fn in solvers:
            original = mc.second_eigenvector
            mc.second_eigenvector = fn
            try:
                reps = args.repeats if solver.startswith("ARPACK") else 1
                wall, cpu, res = timed(lambda f=feats: mc.maskcut(f, tau=0.2, rounds=3), reps)
            finally:
                mc.second_eigenvector = original
            results[solver] = res
            areas = ", ".join(f"{m.mean():.3f}" for m in res.masks)
            print(f"{name:>14} {solver:<26} {wall:8.3f} {cpu:8.3f} [{areas}]")
        if len(results) == 2:
            a, b = results.values()
            agree = [float((x == y).mean()) for x, y in zip(a.masks, b.masks, strict=False)]
            print(f"{'':>14} mask agreement (fraction of equal patches): {agree}")
    compare_affinity(mc, wide, args.repeats)


if __name__ == "__main__":
    main()
