"""Reproduce the shipped base (issue: the method, shown working) and draw its learning curve.

1. Data: ``--scenes`` procedural scenes of master seed 1,000,000 (never used for evaluation,
   whose scenes are seed 1000, or for mining, seed 0) at 256 px, and their exact ground truth of
   every level as a mask table (``unsamv2 scenes`` + ``unsamv2 table import-coco``).
2. ``unsamv2 pretrain`` with its defaults (SAM-2's supervised recipe on the ``base`` config)
   for ``--steps`` steps, every checkpoint (each 125 steps) kept.
3. Quality of the checkpoints every ``--curve-every`` steps (and the last) on held-out scenes (seed 1000): SAM-2's mean IoU after one
   click (the protocol's first click) on objects (level 0) and parts (level 1), single-mask and
   best of 3 (:func:`unsamv2.train.probe.sam2_first_click_probe`); the learning curve
   (``curve.png``: loss and IoU against steps) and ``curve.json``.
4. ``--ship``: write the last checkpoint as the shipped weights (float16,
   ``unsamv2/weights/base_sam2.pt``).

Steps 1-2 are skipped when ``--run`` names a finished pretraining folder.

Run: ``.venv/bin/python benchmarks/bench_pretrain.py [--out runs/bench_pretrain] [--steps 2500]
[--scenes 4000] [--eval-scenes 32] [--curve-every 500] [--run DIR] [--ship]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
UNSAMV2 = [sys.executable, "-m", "unsamv2"]


def pretrain(out: str, scenes: int, steps: int) -> tuple[str, float]:
    """Data + ``unsamv2 pretrain``; returns the run folder and the training wall time (s)."""
    data, table, run = (os.path.join(out, n) for n in ("scenes", "table", "run"))
    if not os.path.exists(os.path.join(data, "annotations.json")):
        subprocess.run([*UNSAMV2, "scenes", "--out", data, "--n", str(scenes), "--seed", "1000000",
                        "--size", "256"], check=True)
    if not os.path.exists(table):
        subprocess.run([*UNSAMV2, "table", "import-coco", os.path.join(data, "annotations.json"), table,
                        "--shard-size", "250"], check=True)
    started = time.perf_counter()
    subprocess.run([*UNSAMV2, "pretrain", table, run, "--steps", str(steps), "--keep-checkpoints", "0", "--resume"],
                   check=True)
    return run, time.perf_counter() - started


def curve(run: str, eval_scenes: int, every: int) -> list[dict]:
    """Probe the kept checkpoints of ``run`` at multiples of ``every`` steps and the last one; one
    row per checkpoint."""
    import torch

    from unsamv2.eval.baselines import Sam2Baseline
    from unsamv2.model.build import build_sam2
    from unsamv2.train.probe import sam2_first_click_probe

    summary = json.loads(Path(run, "summary.json").read_text())
    losses = summary["losses"]
    rows = []
    folders = sorted(Path(run, "checkpoints").glob("step-*"))
    for folder in folders:
        step = int(folder.name.split("-")[1])
        if step % every and folder != folders[-1]:
            continue
        model = build_sam2("base", checkpoint=str(folder / "sam2.pt"))
        with torch.inference_mode():
            result = sam2_first_click_probe(Sam2Baseline.from_model(model), scenes=eval_scenes, seed=1000)
        window = losses[max(0, step - 50):step]
        rows.append({"step": step, "loss": sum(window) / max(len(window), 1), **{
            f"{kind}_{k}": v for kind, values in result.results.items() for k, v in values.items()}})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def plot(rows: list[dict], losses: list[float], path: str) -> None:
    """Loss (running mean) and one-click IoU against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    window = max(1, len(losses) // 40)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    left.plot(np.arange(window, len(losses) + 1), smooth, color="#08519c")
    left.set(xlabel="step", ylabel=f"loss (mean of {window})", title="pretraining loss", yscale="log")
    steps = [r["step"] for r in rows]
    for key, style in (("object_best3", "-o"), ("object_single", "--o"), ("part_best3", "-s"), ("part_single", "--s")):
        right.plot(steps, [r[key] for r in rows], style, label=key.replace("_", " "), markersize=3)
    right.axhline(0.6, color="grey", linewidth=0.6)
    right.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
    right.set(xlabel="step", ylabel="mean IoU after 1 click", title="held-out scenes (seed 1000)", ylim=(0, 1))
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def ship(run: str) -> str:
    """The run's last checkpoint as the shipped float16 weights; returns the path."""
    import torch

    from unsamv2.model.build import build_sam2
    from unsamv2.train.checkpoint import latest_checkpoint, write_sam2_checkpoint

    latest = latest_checkpoint(run)
    model = build_sam2("base", checkpoint=os.path.join(latest, "sam2.pt"))
    path = str(ROOT / "unsamv2" / "weights" / "base_sam2.pt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_sam2_checkpoint(path, model, dtype=torch.float16)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_pretrain")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--scenes", type=int, default=4000)
    parser.add_argument("--eval-scenes", type=int, default=32)
    parser.add_argument("--curve-every", type=int, default=500, help="probe every this many steps")
    parser.add_argument("--run", default=None, help="a finished pretraining folder (skips data and training)")
    parser.add_argument("--ship", action="store_true", help="write unsamv2/weights/base_sam2.pt")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    run, seconds = (args.run, None) if args.run else pretrain(args.out, args.scenes, args.steps)
    if args.ship:
        print(f"shipped weights: {ship(run)}", flush=True)
    rows = curve(run, args.eval_scenes, args.curve_every)
    summary = json.loads(Path(run, "summary.json").read_text())
    plot(rows, summary["losses"], os.path.join(args.out, "curve.png"))
    result = {"run": run, "train_seconds": seconds or summary["seconds"], "steps": summary["steps"],
              "masks_per_second": summary["masks_per_second"], "curve": rows}
    Path(args.out, "curve.json").write_text(json.dumps(result, indent=1))
    last = rows[-1]
    print(f"step {last['step']}: objects single {last['object_single']:.3f} best-of-3 {last['object_best3']:.3f}; "
          f"parts single {last['part_single']:.3f} best-of-3 {last['part_best3']:.3f} "
          f"({args.eval_scenes} held-out scenes); curve {os.path.join(args.out, 'curve.png')}")


if __name__ == "__main__":
    main()
