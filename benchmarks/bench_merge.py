"""merge_regions: the compiled heap (unsamv2) vs. a straightforward dict-scan baseline, one run.

Usage: .venv/bin/python benchmarks/bench_merge.py [--repeats 15] [--baseline-repeats 3]

Features: "realistic" 768-d patch features = the weight-free descriptor of a sample photo crop
(astronaut / coffee at 16 px per patch), pushed through a fixed random 768-d projection with a
tanh and 5% noise, so that the cosine structure is that of a real image, at 768 dimensions.

Rows: the shipped implementation; the pure-Python heap fallback (used without numba); and the
baseline (``merge_regions_reference``: a dict of pair similarities scanned for the maximum after
every merge, the research release's approach). The script asserts identical masks. Times are
wall-clock medians and per-process CPU medians (the machine is shared; CPU time is less affected
by other load). numba compiles once per machine (cached on disk); the first-call time is shown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def realistic_features(name: str, side: int, dim: int = 768, seed: int = 0) -> np.ndarray:
    from PIL import Image

    from unsamv2.mining.features import PatchDescriptor
    from unsamv2.scenes import sample_photos

    photo = sample_photos([name])[name]
    crop = np.asarray(Image.fromarray(photo).resize((side * 16, side * 16), Image.BICUBIC))
    z = PatchDescriptor(16).describe(crop).reshape(side * side, -1)
    rng = np.random.default_rng(seed)
    proj = rng.normal(size=(z.shape[1], dim)) * 2.0
    f = np.tanh(z @ proj) + 0.05 * rng.normal(size=(side * side, dim))
    return f.reshape(side, side, dim).astype(np.float32)


def timed(fn, repeats: int) -> tuple[float, float, object]:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def python_fallback(features):
    from unsamv2.mining import merging

    feats, thr, ms = merging._check_inputs(features, merging.DEFAULT_THRESHOLDS, 4)
    roots, live = merging._merge_python(feats, thr)
    h, w = feats.shape[:2]
    return [merging._level_from_roots(r, int(n), ms, h, w) for r, n in zip(roots, live, strict=True)]


def cold_start_seconds() -> float:
    code = ("import time,numpy as np;from unsamv2.mining.merging import merge_regions;"
            "t=time.perf_counter();merge_regions(np.random.rand(4,4,8));print(time.perf_counter()-t)")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip())


def main() -> None:
    import torch

    from unsamv2.mining.merging import merge_regions, merge_regions_reference

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--baseline-repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"first call in a fresh process (numba load/compile): {cold_start_seconds():.2f} s")
    print(f"{'grid':>10} {'implementation':<28} {'wall ms':>9} {'cpu ms':>9} {'speedup':>8} masks")
    for side, photo in ((48, "astronaut"), (64, "coffee")):
        f = realistic_features(photo, side)
        merge_regions(f)  # warm
        fast_wall, fast_cpu, fast = timed(lambda f=f: merge_regions(f), args.repeats)
        py_wall, py_cpu, py = timed(lambda f=f: python_fallback(f), max(1, args.baseline_repeats))
        base_wall, base_cpu, base = timed(lambda f=f: merge_regions_reference(f), args.baseline_repeats)
        for got in (py, base):
            assert all(np.array_equal(a, b) for a, b in zip(fast, got, strict=True)), "masks differ"
        counts = "/".join(str(level.shape[0]) for level in fast)
        grid = f"{side}x{side}x{f.shape[2]}"
        for name, wall, cpu in (("unsamv2 (heap, numba)", fast_wall, fast_cpu),
                                ("pure-Python heap fallback", py_wall, py_cpu),
                                ("dict-scan baseline", base_wall, base_cpu)):
            print(f"{grid:>10} {name:<28} {wall * 1e3:9.1f} {cpu * 1e3:9.1f} "
                  f"{base_cpu / cpu:7.1f}x {counts}")
    print("identical masks: yes (asserted); speedup = baseline CPU time / row CPU time")


if __name__ == "__main__":
    main()
