"""The pieces of a training step, each side by side with the form it replaced (issue: the method,
shown working, item 7), and where a decoder pass spends its time.

At the shapes of a shipped-base adapter step (4 images x 16 masks = 64 rows, 128-px input, 8 x 8
image tokens of 128 channels, 32 x 32 low-resolution logits), forward + backward, the median over
``--repeats`` runs after a warm-up, one torch thread:

- ``upsample``: the logits to the loss resolution, ``F.interpolate`` (bilinear) vs
  :func:`unsamv2.train.upsample.upsample_bilinear` (two matrix products);
- ``upscaling``: the mask decoder's upscaling (deconvolutions, skip features, GELU) fed the
  transposed, channels-last view of the image tokens vs a contiguous copy (what the decoder now
  does), with the same high-resolution features;
- ``lora``: one LoRA projection of the repeated image tokens in training mode, the previous form
  (uniform draw, ``>=``, ``where``, three matmuls and an add) vs :class:`~unsamv2.model.lora.LoRALinear`;
- ``loss``: one click step's focal + dice + IoU, the textbook definitions
  (:func:`~unsamv2.train.losses.sigmoid_focal_loss`, :func:`~unsamv2.train.losses.dice_loss`,
  :func:`~unsamv2.train.losses.mask_iou`) vs :func:`~unsamv2.train.losses.fused_mask_losses`.

``--profile`` adds a ``torch.profiler`` table of one training-mode decoder pass (forward +
backward) of the shipped base with its adapter, self CPU time grouped into matrix products,
attention, random numbers, convolutions and the rest.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train_kernels.py [--repeats 20] [--profile]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS, TOKENS, CHANNELS, LOW, SIZE = 64, 8, 128, 32, 128


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall milliseconds of ``fn`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def upsample_pair() -> tuple[Callable[[], object], Callable[[], object]]:
    from unsamv2.train.upsample import upsample_bilinear

    low = torch.randn(ROWS, 1, LOW, LOW, requires_grad=True)
    grad = torch.randn(ROWS, 1, SIZE, SIZE)
    return (lambda: F.interpolate(low, (SIZE, SIZE), mode="bilinear", align_corners=False).backward(grad),
            lambda: upsample_bilinear(low, (SIZE, SIZE)).backward(grad))


def upscaling_pair(model: torch.nn.Module) -> tuple[Callable[[], object], Callable[[], object]]:
    decoder = model.sam_mask_decoder
    with torch.no_grad():
        features = model.encode_image(torch.randn(1, 3, SIZE, SIZE))
    high = [h.repeat_interleave(ROWS, dim=0).contiguous() for h in features.high_res]
    tokens = torch.randn(ROWS, TOKENS * TOKENS, CHANNELS)
    hyper = torch.randn(ROWS, CHANNELS // 8)

    def run(contiguous: bool) -> None:
        src = tokens.clone().requires_grad_()
        x = src.transpose(1, 2).reshape(ROWS, CHANNELS, TOKENS, TOKENS)
        up = decoder._upscale(x.contiguous() if contiguous else x, high)
        (hyper[:, None, :] @ up.reshape(ROWS, up.shape[1], -1)).sum().backward()

    return lambda: run(False), lambda: run(True)


def lora_pair() -> tuple[Callable[[], object], Callable[[], object]]:
    from unsamv2.model.lora import LoRALinear

    layer = LoRALinear(CHANNELS, CHANNELS // 2, rank=8, alpha=16.0, dropout=0.1).train()
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(ROWS, TOKENS * TOKENS, CHANNELS, requires_grad=True)
    grad = torch.randn(ROWS, TOKENS * TOKENS, CHANNELS // 2)
    p = layer.lora_dropout.p

    def before() -> None:
        kept = torch.where(torch.rand(x.shape) >= p, x, 0.0)
        update = kept @ (layer.lora_A.T * (layer.scaling / (1.0 - p))) @ layer.lora_B.T
        (F.linear(x, layer.weight, layer.bias) + update).backward(grad)

    return before, lambda: layer(x).backward(grad)


def loss_pair() -> tuple[Callable[[], object], Callable[[], object]]:
    from unsamv2.train.losses import (
        LossWeights,
        TargetStats,
        dice_loss,
        fused_mask_losses,
        mask_iou,
        sigmoid_focal_loss,
    )

    logits = (torch.randn(ROWS, SIZE, SIZE) * 3).requires_grad_()
    targets = torch.rand(ROWS, SIZE, SIZE) > 0.7
    stats = TargetStats(targets, LossWeights())

    def before() -> None:
        mask_iou(logits.detach(), targets)
        (20 * sigmoid_focal_loss(logits, targets) + dice_loss(logits, targets)).sum().backward()

    def after() -> None:
        focal, dice, _ = fused_mask_losses(logits, stats, 2.0)
        (20 * focal + dice).sum().backward()

    return before, after


GROUPS = (("matrix products", ("mm", "addmm", "bmm", "linear")), ("attention", ("scaled_dot_product",)),
          ("random numbers", ("uniform", "rand", "bernoulli")), ("convolutions", ("convolution",)))


def profile_decoder(model: torch.nn.Module) -> dict[str, float]:
    """Share of self CPU time per op group in one training-mode decoder pass, forward + backward."""
    from torch.profiler import ProfilerActivity, profile

    from unsamv2.model.adapter import set_trainable
    from unsamv2.train.interactive import repeat_features

    set_trainable(model, "adapter")
    model.train()
    with torch.no_grad():
        features = repeat_features(model.encode_image(torch.randn(4, 3, SIZE, SIZE)), torch.tensor([16] * 4))
    points, labels = torch.rand(ROWS, 3, 2) * SIZE, torch.ones(ROWS, 3, dtype=torch.int32)
    mask_input = torch.randn(ROWS, 1, LOW, LOW, requires_grad=True)

    def run() -> None:
        model.decode(features, points, labels, torch.rand(ROWS), mask_input).low_res_logits.sum().backward()

    run()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            run()
    totals = {name: 0.0 for name, _ in GROUPS} | {"the rest": 0.0}
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        group = next((name for name, keys in GROUPS if any(k in event.key for k in keys)), "the rest")
        totals[group] += event.self_cpu_time_total
    whole = sum(totals.values())
    return {name: value / whole for name, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="also profile one decoder pass by op group")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from unsamv2.model.build import build_model

    model = build_model("base", adapter="shipped", device="cpu")
    pairs = {"upsample": upsample_pair(), "upscaling": upscaling_pair(model), "lora": lora_pair(),
             "loss": loss_pair()}
    print("| piece | before ms | after ms | ratio |\n|---|---:|---:|---:|")
    for name, (before, after) in pairs.items():
        b, a = median_ms(before, args.repeats), median_ms(after, args.repeats)
        print(f"| {name} | {b:.2f} | {a:.2f} | {b / a:.2f}x |", flush=True)
    if args.profile:
        print("\n| op group | share of a decoder pass (forward + backward) |\n|---|---:|")
        for name, share in profile_decoder(model).items():
            print(f"| {name} | {share:.0%} |")


if __name__ == "__main__":
    main()
