"""The paper's comparison in miniature (issue: the method, shown working).

On the shipped base (a small SAM-2 pretrained on procedural scenes, ``bench_pretrain.py``):

1. Unlabeled images: ``--scenes`` procedural scenes of master seed 0 at 256 px (never used for
   pretraining, seeds >= 1,000,000, or for evaluation, seed 1000), mined by the default miner
   (weight-free descriptor features, no labels) into a mask table.
2. UnSAMv2: the granularity adapter trained on the mined (mask, g) pairs only, base frozen
   (``trainable=adapter``). UnSAMv2+: the same with ``--human-fraction`` of the images taken from
   the scenes' ground truth (light supervision).
3. The evaluation protocol on ``--eval-scenes`` held-out scenes (seed 1000, objects = level 0,
   parts = levels 1-3, at most ``--max-objects`` per image): SAM-2 base single-mask and best-of-3,
   UnSAMv2 and UnSAMv2+ with the oracle g, UnSAMv2 at fixed g; NoC80/85/90 and 1-IoU;
   whole-image AR@1000 (all levels, the first ``--ar-scenes`` held-out scenes) of UnSAMv2 at the
   10 g (pooled) and of SAM-2's automatic mask generator, with their predicted-IoU and stability
   filters (``AR1000``) and without them (``AR1000 relaxed``: the masks, not their ranking).
4. ``comparison.md`` (the table, with the paper's numbers beside), ``comparison.json``,
   ``strip.png`` (one click decoded at g = 0.1 ... 1.0 by UnSAMv2, and the ground truth).
   ``--ship`` copies the UnSAMv2 adapter to ``unsamv2/weights/base_unsamv2_adapter.safetensors``.

Run: ``.venv/bin/python benchmarks/bench_comparison.py [--out runs/bench_comparison] [--steps 400]
[--eval-scenes 32] [--ship]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

FIXED_G = ("g=0.2", "g=0.5", "g=0.8", "g=1")
# The paper's Table (SAM-2 -> UnSAMv2 / UnSAMv2+, Hiera-S, averaged over its benchmarks).
PAPER = {"NoC90": (5.69, 4.75, None), "1-IoU": (58.0, 73.1, None), "AR1000": (49.6, 68.3, None)}


def unlabeled_table(out: str, scenes: int) -> tuple[str, str]:
    """Mine ``scenes`` scenes of seed 0 (kept: a rerun reuses it); returns (table, ground-truth COCO)."""
    from unsamv2.jobs.mine import MineJob, run_mine
    from unsamv2.scenes import write_scene_dataset

    images, table = os.path.join(out, "scenes"), os.path.join(out, "mined_table")
    if not os.path.exists(os.path.join(images, "annotations.json")):
        write_scene_dataset(images, n=scenes, seed=0, size=256)
    started = time.perf_counter()
    summary = run_mine(MineJob(os.path.join(images, "images"), table, shard_size=64, backend="local"))
    print(f"mined {table}: {summary} in {time.perf_counter() - started:.0f} s", flush=True)
    return table, os.path.join(images, "annotations.json")


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def train_adapter(table: str, out: str, steps: int, lr: float, **extra: object) -> str:
    """An adapter run on the shipped base; returns its last checkpoint folder."""
    from unsamv2.train import TrainConfig, train

    config = TrainConfig(table_uri=table, output_uri=out, use_split=False, max_steps=steps, lr=lr,
                         min_lr=lr / 10, checkpoint_every=max(steps // 2, 1), val_images=0, **extra)
    started = time.perf_counter()
    result = train(config, resume=True)
    print(f"trained {out}: loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}, "
          f"{result.masks_per_second:.1f} masks/s, {time.perf_counter() - started:.0f} s", flush=True)
    return result.checkpoint_uri


def evaluate_run(name: str, checkpoint: str, out: str, scenes: str, max_objects: int
                 ) -> dict[str, dict[str, float]]:
    """Rows of one run: its oracle row, and for UnSAMv2 also the SAM-2 base and fixed-g rows."""
    from unsamv2.eval.checkpoint import evaluate_checkpoint

    policies = ["oracle", "sam2-single", "sam2-best3", *FIXED_G] if name == "UnSAMv2" else ["oracle"]
    started = time.perf_counter()
    result = evaluate_checkpoint(checkpoint, os.path.join(out, f"report-{name}"), scenes=scenes,
                                 policies=policies, max_objects=max_objects, probe=False, progress=False)
    print(f"evaluated {name} in {time.perf_counter() - started:.0f} s", flush=True)
    metrics, rows = result.metrics, {}
    for policy in policies:
        row = name if policy == "oracle" else {"sam2-single": "SAM-2 base single", "sam2-best3":
                                                "SAM-2 base best-of-3"}.get(policy, f"{name} {policy}")
        rows[row] = {f"{kind}/{m}": metrics.get(f"scenes-{kind}/{policy}/{m}", float("nan"))
                     for kind in ("objects", "parts") for m in ("NoC80", "NoC85", "NoC90", "1-IoU")}
    return rows


def evaluate_runs(runs: dict[str, str], out: str, eval_scenes: int, max_objects: int,
                  points_per_side: int, ar_scenes: int, pool: Any) -> dict[str, dict[str, float]]:
    """Metrics per row name: {"objects/NoC90": ..., "parts/1-IoU": ..., "AR1000": ...}."""
    scenes = f"scenes:{eval_scenes}:1000:256"
    jobs = [pool.submit(evaluate_run, name, ckpt, out, scenes, max_objects) for name, ckpt in runs.items()]
    whole = f"scenes:{ar_scenes}:1000:256"  # the first ar_scenes of the same held-out scenes
    ars = {(row, relaxed): pool.submit(whole_image_ar, ckpt, whole, points_per_side, relaxed)
           for row, ckpt in (("UnSAMv2", runs["UnSAMv2"]), ("SAM-2 base single", None)) for relaxed in (False, True)}
    rows: dict[str, dict[str, float]] = {}
    for job in jobs:
        rows.update(job.result())
    order = ["SAM-2 base single", "SAM-2 base best-of-3", "UnSAMv2", "UnSAMv2+", *(f"UnSAMv2 {g}" for g in FIXED_G)]
    rows = {name: rows[name] for name in order if name in rows}
    for (row, relaxed), job in ars.items():
        rows[row]["AR1000 relaxed" if relaxed else "AR1000"] = job.result()
    return rows


def whole_image_ar(checkpoint: str | None, scenes: str, points_per_side: int, relaxed: bool) -> float:
    """Whole-image AR@1000 over all levels of the scenes benchmark: UnSAMv2's generator at the 10 g
    (pooled; the official protocol: m2m pass, predicted IoU > 0.65 below g 0.5 else > 0.5,
    stability > 0.7) for a ``checkpoint``, else the shipped base's SAM-2 automatic mask generator
    (predicted IoU > 0.5, stability > 0.8). ``relaxed``: both filters off (0), so that AR measures
    the masks themselves, not how well the model ranks them."""
    from unsamv2.eval import EvalConfig, evaluate
    from unsamv2.eval.baselines import Sam2AutomaticMasks, Sam2Baseline
    from unsamv2.eval.checkpoint import benchmark_datasets
    from unsamv2.model import UnSAMv2MaskGenerator, UnSAMv2Predictor, build_sam2
    from unsamv2.train.checkpoint import load_trained_model

    datasets = benchmark_datasets(scenes, ())[:1]
    if checkpoint is None:
        model = build_sam2("base")
        generator: Any = Sam2AutomaticMasks(model, points_per_side=points_per_side,
                                            pred_iou_thresh=0.0 if relaxed else 0.5,
                                            stability_score_thresh=0.0 if relaxed else 0.8)
        config = EvalConfig(policies=("sam2-single",), whole_image=True, max_clicks=1)
        report = evaluate(None, datasets, config, baseline=Sam2Baseline.from_model(model), generator=generator,
                          model="sam2-base-automatic")
    else:
        trained = load_trained_model(checkpoint)
        predictor = UnSAMv2Predictor(trained)
        generator = UnSAMv2MaskGenerator(trained, points_per_side=points_per_side, predictor=predictor,
                                         pred_iou_thresh=0.0 if relaxed else None,
                                         stability_score_thresh=0.0 if relaxed else 0.7)
        config = EvalConfig(policies=("g=1",), whole_image=True, max_clicks=1)
        report = evaluate(predictor, datasets, config, generator=generator, model="unsamv2")
    return report.metrics()[("scenes-objects", "whole/AR1000")]


def markdown(rows: dict[str, dict[str, float]]) -> str:
    """The comparison table (IoU and AR in %), the paper's numbers and deltas beside."""
    cols = ["objects/NoC80", "objects/NoC85", "objects/NoC90", "objects/1-IoU", "parts/NoC80", "parts/NoC85",
            "parts/1-IoU", "AR1000", "AR1000 relaxed"]
    lines = ["| model | " + " | ".join(c.replace("/", " ") for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for name, values in rows.items():
        cells = []
        for c in cols:
            v = values.get(c)
            if v is None or v != v:
                cells.append("—")
            else:
                cells.append(f"{100 * v:.1f}" if ("IoU" in c or "AR" in c) else f"{v:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ours = rows.get("UnSAMv2", {})
    base = rows.get("SAM-2 base single", {})
    lines += ["", "| delta UnSAMv2 - SAM-2 single | paper (Hiera-S, avg.) | ours (objects) | ours (parts) |",
              "|---|---:|---:|---:|"]
    for metric, (before, after, _) in PAPER.items():
        if metric == "AR1000":
            ours_obj = 100 * (ours.get("AR1000", float("nan")) - base.get("AR1000", float("nan")))
            lines.append(f"| AR@1000 | {after - before:+.1f} | {ours_obj:+.1f} (all levels) | |")
            continue
        scale = 100 if metric == "1-IoU" else 1
        fmt = "{:+.1f}" if metric == "1-IoU" else "{:+.2f}"
        objs = scale * (ours.get(f"objects/{metric}", float("nan")) - base.get(f"objects/{metric}", float("nan")))
        parts = scale * (ours.get(f"parts/{metric}", float("nan")) - base.get(f"parts/{metric}", float("nan")))
        cells = [fmt.format(v) if v == v else "—" for v in (after - before, objs, parts)]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_comparison")
    parser.add_argument("--scenes", type=int, default=256, help="unlabeled scenes to mine")
    parser.add_argument("--table", default=None, help="an already mined table of those scenes")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--human-fraction", type=float, default=0.25)
    parser.add_argument("--eval-scenes", type=int, default=32)
    parser.add_argument("--max-objects", type=int, default=4, help="objects (and parts) per image")
    parser.add_argument("--points-per-side", type=int, default=16, help="whole-image grid")
    parser.add_argument("--ar-scenes", type=int, default=8, help="held-out scenes of the whole-image AR")
    parser.add_argument("--workers", type=int, default=2, help="processes (1 torch thread each)")
    parser.add_argument("--ship", action="store_true", help="copy the UnSAMv2 adapter into unsamv2/weights/")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.table:
        table, gt = args.table, os.path.join(args.out, "scenes", "annotations.json")
    else:
        table, gt = unlabeled_table(args.out, args.scenes)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.workers, initializer=_threads, initargs=(1,)) as pool:
        unsamv2 = pool.submit(train_adapter, table, os.path.join(args.out, "unsamv2"), args.steps, args.lr)
        plus = pool.submit(train_adapter, table, os.path.join(args.out, "unsamv2plus"), args.steps, args.lr,
                           human_coco_uri=gt, human_fraction=args.human_fraction)
        runs = {"UnSAMv2": unsamv2.result(), "UnSAMv2+": plus.result()}
        rows = evaluate_runs(runs, args.out, args.eval_scenes, args.max_objects, args.points_per_side,
                             args.ar_scenes, pool)
    text = markdown(rows)
    Path(args.out, "comparison.md").write_text(text)
    Path(args.out, "comparison.json").write_text(json.dumps({"runs": runs, "rows": rows}, indent=1))
    from bench_train import strip_figure

    from unsamv2.train.checkpoint import load_trained_model

    strip_figure(load_trained_model(runs["UnSAMv2"]), os.path.join(args.out, "strip.png"), seed=1000)
    if args.ship:
        target = ROOT / "unsamv2" / "weights" / "base_unsamv2_adapter.safetensors"
        shutil.copyfile(os.path.join(runs["UnSAMv2"], "adapter.safetensors"), target)
        print(f"shipped adapter: {target}")
    print(text)


if __name__ == "__main__":
    main()
