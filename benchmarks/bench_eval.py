"""Time per object of the oracle protocol (10 g, up to N clicks), with and without embedding reuse.

Variants, all on the same procedural objects and the same model (so the IoU curves are equal):

- ``reuse``       the image is embedded once for all its objects, g values and clicks (what
                  ``unsamv2.eval.evaluate`` does);
- ``per-object``  re-embedded before each object (a loop that calls set_image per object);
- ``per-call``    re-embedded before every predict call (a stateless predict(image, ...) API).

Usage::

    .venv/bin/python benchmarks/bench_eval.py                       # tiny model, CPU
    .venv/bin/python benchmarks/bench_eval.py --config sam2.1_hiera_s --images 1 --objects 2 --max-clicks 3
    .venv/bin/python benchmarks/bench_eval.py --device cuda --config sam2.1_hiera_s

Weights are random (no download): timings do not depend on them, but a random model rarely reaches
the target, so most objects run all ``--max-clicks`` clicks at every g (the slow end).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


class ReembedPerCall:
    """A GranularityPredictor that embeds the image again before every prediction."""

    def __init__(self, predictor):
        self.predictor, self.image, self.embeds = predictor, None, 0

    def set_image(self, image):
        self.image = image

    def predict(self, point_coords, point_labels, granularity, mask_input=None):
        self.predictor.set_image(self.image)
        self.embeds += 1
        return self.predictor.predict(point_coords, point_labels, granularity, mask_input)


class CountingPredictor:
    """Counts and times the embeddings and predictions of the wrapped predictor."""

    def __init__(self, predictor):
        self.predictor, self.embeds, self.calls = predictor, 0, 0
        self.embed_seconds, self.predict_seconds = 0.0, 0.0

    def set_image(self, image):
        self.embeds += 1
        t0 = time.perf_counter()
        self.predictor.set_image(image)
        self.embed_seconds += time.perf_counter() - t0

    def predict(self, *args, **kwargs):
        self.calls += 1
        t0 = time.perf_counter()
        out = self.predictor.predict(*args, **kwargs)
        self.predict_seconds += time.perf_counter() - t0
        return out


def load_objects(n_images: int, per_image: int, size: int):
    from unsamv2.eval.datasets import SceneDataset

    return [(s.image, list(s.masks[:per_image])) for s in SceneDataset(n_images, seed=0, size=size, min_area=256)]


def run_variant(variant: str, predictor, samples, settings) -> tuple[float, int, CountingPredictor, list]:
    from unsamv2.eval.policies import OracleGranularity

    counted = CountingPredictor(predictor)
    wrapped = ReembedPerCall(counted) if variant == "per-call" else counted
    policy = OracleGranularity()
    n, curves = 0, []
    t0 = time.perf_counter()
    for image, masks in samples:
        if variant == "reuse":
            wrapped.set_image(image)
        for gt in masks:
            if variant != "reuse":
                wrapped.set_image(image)
            curves.append(policy.run(wrapped, gt, None, settings).ious)
            n += 1
    elapsed = time.perf_counter() - t0
    return elapsed, n, counted, curves


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="model config (tiny, sam2.1_hiera_s, ...)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=1)
    p.add_argument("--objects", type=int, default=3, help="objects per image")
    p.add_argument("--size", type=int, default=256, help="procedural image side (pixels)")
    p.add_argument("--max-clicks", type=int, default=3)
    p.add_argument("--variants", default="reuse,per-object,per-call")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    import torch

    from unsamv2.eval.policies import LoopSettings
    from unsamv2.model import UnSAMv2Predictor, build_model

    torch.set_grad_enabled(False)
    model = build_model(args.config, device=args.device, seed=0)
    predictor = UnSAMv2Predictor(model)
    samples = load_objects(args.images, args.objects, args.size)
    settings = LoopSettings(target_iou=0.90, max_clicks=args.max_clicks)
    run_variant("reuse", predictor, samples, settings)  # warm-up: every prompt shape once, untimed

    variants = args.variants.split(",")
    print(f"# oracle protocol, config={args.config}, device={args.device}, {platform.machine()}, "
          f"torch {torch.__version__}, {args.images} images x <= {args.objects} objects, "
          f"{args.size} px, max {args.max_clicks} clicks, 10 g, {args.repeats} interleaved repeats, "
          f"load average {os.getloadavg()[0]:.1f}")
    rows: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    stats: dict[str, tuple[int, int, int]] = {}
    ref_curves, same = None, True
    for _ in range(args.repeats):
        for variant in variants:  # interleaved, so load changes hit every variant alike
            elapsed, n, counted, curves = run_variant(variant, predictor, samples, settings)
            rows[variant].append((elapsed / n, counted.embed_seconds / n, counted.predict_seconds / n))
            stats[variant] = (n, counted.embeds, counted.calls)
            ref_curves = curves if ref_curves is None else ref_curves
            same &= all(len(a) == len(b) and np.allclose(a, b) for a, b in zip(curves, ref_curves, strict=True))
    print(f"{'variant':<11} {'objects':>7} {'embeds':>7} {'predicts':>8} {'s/object':>9} {'embed s/obj':>11} "
          f"{'predict s/obj':>13}")
    for variant in variants:
        n, embeds, calls = stats[variant]
        total, embed, pred = (statistics.median(col) for col in zip(*rows[variant], strict=True))
        print(f"{variant:<11} {n:>7} {embeds:>7} {calls:>8} {total:>9.3f} {embed:>11.3f} {pred:>13.3f}")
    print("medians over repeats; 'embed s/obj' is the time spent in set_image, the part that reuse saves "
          "(the predict work is identical in every variant)")
    print("IoU curves identical across variants" if same else "WARNING: IoU curves differ across variants")


if __name__ == "__main__":
    main()
