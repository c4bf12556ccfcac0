"""Training benchmarks (issue: adapter training): what the tiny model learns, and how fast.

1. Data: the ``make demo`` inputs (12 procedural scenes of seed 0 at 256 px + 5 sample photos),
   mined in-process with the weight-free features, statistics and split (or ``--table``).
2. Quality, on held-out procedural scenes (seed 1000, never trained on): mean IoU after ONE click
   (the protocol's first click) at each node's ground-truth g, and at each fixed g (the best one
   reported) — :func:`unsamv2.train.probe.granularity_probe`. Rows: the untrained tiny model, the
   tiny model after ``make demo``'s budget (same settings as ``flows/demo.py``) and after a
   longer run (``--long`` steps, same settings otherwise).
3. Throughput (masks per second of training, one process): the two runs above (``full`` mode),
   the tiny model in ``adapter`` mode, and SAM-2.1 Hiera-S in ``adapter`` mode (random weights,
   1024 px, 30 masks per image; ``--no-real`` skips it).
4. ``--strip DIR``: one click on a held-out scene decoded at g = 0.1 ... 1.0, next to the ground
   truth of the clicked region's hierarchy, by the demo-budget model (``DIR/train_strip.png``) and
   by the longer run (``DIR/train_strip_long.png``); the pictures of docs/training.md.

Run: ``.venv/bin/python benchmarks/bench_train.py [--out runs/bench_train] [--long 600] [--strip PATH]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def demo_settings() -> tuple[dict, int]:
    """``make demo``'s training settings as TrainConfig fields, and its step count."""
    import inspect

    from flows.demo import DEMO_TRAINING, demo

    return dict(DEMO_TRAINING), int(inspect.signature(demo.fn).parameters["max_steps"].default)


def mined_table(out: str) -> str:
    """Mine the demo inputs into ``out/mask_table`` (kept: a rerun reuses it)."""
    from unsamv2.data.stats import compute_stats
    from unsamv2.jobs.mine import MineJob, run_mine
    from unsamv2.scenes import write_sample_photos, write_scene_dataset

    images, table = os.path.join(out, "images"), os.path.join(out, "mask_table")
    if not os.path.exists(os.path.join(table, "stats", "split.parquet")):
        write_scene_dataset(os.path.join(images, "scenes"), n=12, seed=0, size=256)
        write_sample_photos(os.path.join(images, "photos"))
        run_mine(MineJob(images, table, shard_size=8, backend="local"))
        compute_stats(table, os.path.join(table, "stats"), val_fraction=0.15)
    return table


def probe(model, scenes: int, seed: int):  # noqa: ANN001, ANN201
    from unsamv2.model import UnSAMv2Predictor
    from unsamv2.train.probe import granularity_probe

    return granularity_probe(UnSAMv2Predictor(model), scenes=scenes, seed=seed, size=256)


def train_run(table: str, out: str, name: str, steps: int, fields: dict):  # noqa: ANN201
    from unsamv2.train import TrainConfig, train

    fields = {**fields, "checkpoint_every": max(steps // 4, 1), "keep_checkpoints": 0}
    config = TrainConfig(table_uri=table, output_uri=os.path.join(out, name), max_steps=steps, **fields)
    start = time.perf_counter()
    result = train(config, resume=True)
    print(f"  {name}: {result.steps} steps, loss {result.losses[0]:.2f} -> {result.losses[-1]:.2f}, "
          f"{result.masks_per_second:.2f} masks/s, {time.perf_counter() - start:.0f} s", flush=True)
    return result


def throughput(table: str, out: str, config: str, trainable: str, steps: int, **fields) -> float:
    """Masks per second over ``steps`` steps (after one warm-up step, in a fresh folder)."""
    from unsamv2.train import TrainConfig, train

    folder = os.path.join(out, f"speed-{config}-{trainable}-{int(time.time())}")
    base = dict(table_uri=table, output_uri=folder, model_config=config, trainable=trainable, device="cpu",
                val_images=0, checkpoint_every=10_000, **fields)
    train(TrainConfig(max_steps=1, **base))
    result = train(TrainConfig(max_steps=1 + steps, **base), resume=True)
    return result.masks_per_second


def random_checkpoint(config: str, out: str) -> str:
    """A SAM-2.x checkpoint with random weights (adapter training needs a base checkpoint)."""
    import torch

    from unsamv2.model import build_model
    from unsamv2.model.checkpoint import is_adapter_key

    path = os.path.join(out, f"random-{config}.pt")
    if not os.path.exists(path):
        state = {k: v for k, v in build_model(config, seed=0).state_dict().items() if not is_adapter_key(k)}
        torch.save({"model": state}, path)
    return path


def strip_figure(model, path: str, seed: int) -> None:  # noqa: ANN001
    """One click on a held-out scene at g = 0.1 ... 1.0, and the clicked hierarchy's ground truth."""
    import numpy as np

    from unsamv2.eval.interactive import ClickSession
    from unsamv2.model import UnSAMv2Predictor
    from unsamv2.model.overlay import draw_points, overlay_masks, png_bytes, strip, titled
    from unsamv2.scenes import iter_scenes

    scene = next(iter(iter_scenes(1, seed, 256)))
    leaf = max((n for n in scene.nodes if not any(c.parent_id == n.node_id for c in scene.nodes)),
               key=lambda n: n.area)
    points, labels = ClickSession(leaf.mask).click(None)
    chain, node = [], leaf
    by_id = {n.node_id: n for n in scene.nodes}
    while node is not None:
        chain.append(node)
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    predictor = UnSAMv2Predictor(model)
    predictor.set_image(scene.image)
    gs = [round(0.1 * k, 1) for k in range(1, 11)]
    masks, _, _ = predictor.predict(points, labels, granularity=gs)
    blue = [(30, 144, 255)]
    top = [titled(draw_points(overlay_masks(scene.image, [m], blue), points, labels), f"g={g:g}")
           for g, m in zip(gs, masks, strict=True)]
    truth = [titled(draw_points(overlay_masks(scene.image, [n.mask], [(40, 200, 60)]), points, labels),
                    f"truth g={n.granularity:.2f}") for n in reversed(chain)]
    blank = np.full_like(top[0], 255)
    truth += [blank] * (5 - len(truth) % 5 if len(truth) % 5 else 0)
    rows = [strip(top[:5]), strip(top[5:])] + [strip(truth[i:i + 5]) for i in range(0, len(truth), 5)]
    gap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    image = np.concatenate([part for row in rows for part in (row, gap)][:-1], 0)
    with open(path, "wb") as f:
        f.write(png_bytes(image))
    print(f"  wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_train")
    parser.add_argument("--table", default=None, help="mask table to train on (default: mine the demo inputs)")
    parser.add_argument("--long", type=int, default=600, help="steps of the longer run")
    parser.add_argument("--eval-scenes", type=int, default=4)
    parser.add_argument("--eval-seed", type=int, default=1000)
    parser.add_argument("--speed-steps", type=int, default=3)
    parser.add_argument("--no-real", action="store_true", help="skip the SAM-2.1 Hiera-S throughput row")
    parser.add_argument("--strip", default=None, help="folder for train_strip.png / train_strip_long.png")
    args = parser.parse_args()
    import torch

    from unsamv2.model import build_model
    from unsamv2.train.checkpoint import load_trained_model

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    table = args.table or mined_table(args.out)
    fields, demo_steps = demo_settings()
    rows = [("untrained tiny model", 0, probe(build_model("tiny"), args.eval_scenes, args.eval_seed), None)]
    for name, steps in (("make demo budget", demo_steps), ("longer run", args.long)):
        result = train_run(table, args.out, f"tiny-{steps}", steps, fields)
        model = load_trained_model(result.checkpoint_uri)
        rows.append((name, steps, probe(model, args.eval_scenes, args.eval_seed), result))
        if args.strip:
            png = "train_strip.png" if name == "make demo budget" else "train_strip_long.png"
            strip_figure(model, os.path.join(args.strip, png), args.eval_seed)
    speeds = [("tiny", "full", f"{rows[1][3].masks_per_second:.2f}", "make demo settings, batch 2 x 8 masks")]
    speeds.append(("tiny", "adapter", f"{throughput(table, args.out, 'tiny', 'adapter', args.speed_steps, batch_size=2, max_masks_per_image=8):.2f}",
                   "batch 2 x 8 masks"))
    if not args.no_real:
        ckpt = random_checkpoint("sam2.1_hiera_s", args.out)
        speed = throughput(table, args.out, "sam2.1_hiera_s", "adapter", 2, base_checkpoint=ckpt, batch_size=1,
                           max_masks_per_image=30)
        speeds.append(("sam2.1_hiera_s", "adapter", f"{speed:.2f}", "1024 px, batch 1 x 30 masks (paper: 2 x 30 per GPU)"))
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print("| model | steps | IoU@1 click, ground-truth g | best fixed g | IoU@1 click, best fixed g | gain of the dial |"
          "\n|---|---:|---:|---:|---:|---:|")
    for name, steps, p, _ in rows:
        print(f"| {name} | {steps} | {p.gt_g:.3f} | {p.best_fixed_g:g} | {p.best_fixed:.3f} | {p.dial_gain:+.3f} |")
    print(f"\n{rows[0][2].n_masks} held-out regions ({args.eval_scenes} scenes of seed {args.eval_seed}); IoU at each "
          "fixed g for the longer run: " + ", ".join(f"{g}: {v:.3f}" for g, v in rows[-1][2].fixed.items()))
    print("\n| model | mode | masks / s (CPU, 1 process) | setting |\n|---|---|---:|---|")
    for model, mode, speed, note in speeds:
        print(f"| {model} | {mode} | {speed} | {note} |")


if __name__ == "__main__":
    main()
