"""CPU latency of the UnSAMv2 model: embedding, decoding, batching over g, whole-image generation.

    .venv/bin/python benchmarks/bench_model.py [--configs tiny sam2.1_hiera_s] [--repeats 5] [--no-m2m]

Random weights (no checkpoint needed: latency does not depend on the values). Each number is the
median over ``--repeats`` runs after one warm-up; the machine's load average is printed because
other processes share the CPU. Compared side by side in one run:

- 10 granularities in ONE decoder call vs 10 separate calls (same clicks);
- whole-image generation at 10 g with ONE image embedding vs re-embedding the image for every g
  (what the reference generator does: it calls ``set_image`` inside ``generate``), with the m2m
  second pass (the official evaluation's setting; ``--no-m2m`` decodes each click once).

``benchmarks/bench_whole_image.py`` compares whole-image generation with the release's own
generator.

Each pair is timed alternately (A, B, A, B, ...) so that load changes hit both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

GRANULARITIES = [round(0.1 * k, 1) for k in range(1, 11)]


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_median_seconds(fa: Callable[[], object], fb: Callable[[], object],
                          repeats: int) -> tuple[float, float]:
    """Medians of two alternatives timed alternately (A B A B ...), so load changes hit both."""
    fa(), fb()  # warm-up
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((fa, times_a), (fb, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def bench_config(config: str, repeats: int, points_per_side: int,
                 use_m2m: bool = True) -> list[tuple[str, str, float]]:
    import skimage.data
    import torch

    from unsamv2.model import UnSAMv2MaskGenerator, UnSAMv2Predictor, build_model

    torch.manual_seed(0)
    model = build_model(config)
    image = skimage.data.astronaut()  # 512 x 512 RGB
    predictor = UnSAMv2Predictor(model)
    click, label = [[250.0, 120.0]], [1]
    rows = []

    def add(name: str, seconds: float) -> None:
        rows.append((config, name, seconds))
        print(f"  {config:<16} {name:<52} {1000 * seconds:10.1f} ms", flush=True)

    add("image embedding (set_image)", median_seconds(lambda: predictor.set_image(image), repeats))
    add("one decode (1 click, 1 g)", median_seconds(lambda: predictor.predict(click, label, 0.5), repeats))
    batched, separate = paired_median_seconds(
        lambda: predictor.predict(click, label, GRANULARITIES),
        lambda: [predictor.predict(click, label, g) for g in GRANULARITIES], repeats)
    add("10 g in one decode", batched)
    add("10 g as 10 separate decodes", separate)

    generator = UnSAMv2MaskGenerator(model, points_per_side=points_per_side, points_per_batch=64,
                                     use_m2m=use_m2m)

    def reembed_per_g() -> None:
        for g in GRANULARITIES:
            generator.generate(image, g)

    once, per_g = paired_median_seconds(lambda: generator.generate(image, GRANULARITIES),
                                        reembed_per_g, max(1, repeats // 2))
    grid = f"{points_per_side}x{points_per_side} grid, m2m {'on' if use_m2m else 'off'}"
    add(f"whole image, 10 g, {grid}, one embedding", once)
    add(f"whole image, 10 g, {grid}, embed per g", per_g)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "sam2.1_hiera_s"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points-per-side", type=int, nargs="+", default=None,
                        help="grid per config for the whole-image rows (default: 8 tiny, 4 others)")
    parser.add_argument("--no-m2m", action="store_true",
                        help="whole-image rows without the m2m second pass (default: with it, as the official evaluation)")
    args = parser.parse_args()
    import torch

    grids = args.points_per_side or [8 if c == "tiny" else 4 for c in args.configs]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}")
    rows = []
    for config, grid in zip(args.configs, grids, strict=True):
        rows += bench_config(config, args.repeats, grid, use_m2m=not args.no_m2m)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print("| config | measurement | median ms |\n|---|---|---:|")
    for config, name, seconds in rows:
        print(f"| {config} | {name} | {1000 * seconds:.1f} |")
    by_name = {(c, n): s for c, n, s in rows}
    for config in args.configs:
        one = by_name[(config, "10 g in one decode")]
        ten = by_name[(config, "10 g as 10 separate decodes")]
        print(f"\n{config}: batching 10 g in one decode is {ten / one:.1f}x faster than 10 decodes",
              end="")
        whole = [s for (c, n), s in by_name.items() if c == config and n.startswith("whole image")]
        if len(whole) == 2:
            print(f"; whole image with one embedding is {whole[1] / whole[0]:.1f}x faster", end="")
    print()


if __name__ == "__main__":
    main()
