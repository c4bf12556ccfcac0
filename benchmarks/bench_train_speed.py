"""Training throughput before / after, side by side in one run (issue: the method, shown working, item 7).

Each side is a checkout of the project (``--before``: e.g. a ``git worktree`` of an older commit;
the current checkout is "after"); both train the same model in ``adapter`` mode on the same mask
table for ``--steps`` timed steps after one warm-up step, in fresh output folders, in child
processes that import the library from their own checkout. The sides alternate ``--rounds``
times and the best round of each is kept, so background load hits both alike.

Shapes:

- ``base``: the shipped base (128 px, decoder width 128), 4 images x 16 masks per step;
- ``hiera-s``: SAM-2.1 Hiera-S shapes with random weights (1024 px, decoder width 256), 1 image x
  8 masks per step (a 2-core CPU needs ~minutes per step at the recipe's 30 masks).

``--precision bf16`` trains the after side under bf16 autocast (with ``--before .``: the same
code in fp32 against bf16). ``--phases`` times the parts of one step instead (the step's own pieces, called one after the
other on batches loaded beforehand, so data loading is left out): the interactive forward (image
encoder, 1 + 3 decoder passes, click sampling), the loss, the backward and the optimizer, each
the median over ``--steps`` x ``--rounds`` steps per side.

Run: ``git worktree add /tmp/before <commit> && .venv/bin/python benchmarks/bench_train_speed.py
--before /tmp/before --table runs/bench_comparison/mined_table [--steps 3] [--rounds 2] [--shapes base hiera-s]
[--phases]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import torch
from unsamv2.train import TrainConfig, train
spec = json.loads(sys.argv[2])
base = dict(table_uri=spec["table"], output_uri=spec["out"], use_split=False, trainable="adapter", device="cpu",
            val_images=0, checkpoint_every=10_000, **spec["fields"])
train(TrainConfig(max_steps=1, **base))
start = time.perf_counter()
result = train(TrainConfig(max_steps=1 + spec["steps"], **base), resume=True)
print(json.dumps({"masks_per_second": result.masks_per_second, "seconds": result.seconds}))
"""

PHASES_CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import torch
from unsamv2.train import TrainConfig
from unsamv2.train.recipe import _setup, interactive_loss, loss_weights
spec = json.loads(sys.argv[2])
config = TrainConfig(table_uri=spec["table"], output_uri=spec["out"], use_split=False, trainable="adapter",
                     device="cpu", val_images=0, checkpoint_every=10_000, max_steps=100, **spec["fields"])
run = _setup(config, False)
source = run.loader.batches(run.position)
batches = [next(source)[0] for _ in range(1 + spec["steps"])]
times = {"forward": [], "loss": [], "backward": [], "optimizer": [], "step": []}
for index, batch in enumerate(batches):
    marks = [time.perf_counter()]
    steps = run.loop(batch.images, batch.masks, batch.granularity, batch.counts, run.clicks)
    marks.append(time.perf_counter())
    losses = interactive_loss(steps, batch.masks, float(batch.num_objects), loss_weights(config))
    marks.append(time.perf_counter())
    run.optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    marks.append(time.perf_counter())
    run.optimizer.step()
    marks.append(time.perf_counter())
    if index:  # the first step warms up
        for name, start, end in zip(("forward", "loss", "backward", "optimizer"), marks, marks[1:]):
            times[name].append(end - start)
        times["step"].append(marks[-1] - marks[0])
print(json.dumps({name: statistics.median(values) for name, values in times.items()}))
"""


def shape_fields(shape: str, work: str) -> dict:
    """TrainConfig fields of a shape (a random Hiera-S checkpoint is written once under ``work``)."""
    if shape == "base":
        from unsamv2.model.build import SHIPPED_BASE, shipped_weights

        return {"model_config": str(ROOT / "unsamv2" / "configs" / "base.yaml"),
                "base_checkpoint": shipped_weights(SHIPPED_BASE), "batch_size": 4, "max_masks_per_image": 16}
    import torch

    from unsamv2.model import build_sam2

    path = os.path.join(work, "random-hiera-s.pt")
    if not os.path.exists(path):
        torch.save({"model": build_sam2("sam2.1_hiera_s", seed=0).state_dict()}, path)
    return {"model_config": "sam2.1_hiera_s", "base_checkpoint": path, "batch_size": 1, "max_masks_per_image": 8}


def measure(code: str, table: str, fields: dict, steps: int, work: str, phases: bool = False) -> dict:
    """One side's measurement in a child process importing the library from ``code``: {"masks_per_second"}
    from a short training run, or (``phases``) the median seconds of each part of a step."""
    out = tempfile.mkdtemp(dir=work)
    spec = json.dumps({"table": table, "out": out, "steps": steps, "fields": fields})
    proc = subprocess.run([sys.executable, "-c", PHASES_CHILD if phases else CHILD, code, spec], capture_output=True,
                          text=True, check=False, env={**os.environ, "PYTHONPATH": code})
    if proc.returncode:
        raise SystemExit(f"training with {code} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_phases(before: str, table: str, fields: dict, args: argparse.Namespace) -> dict:
    """Median seconds per part of a step, each side's rounds pooled by taking the faster round per part."""
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    for _ in range(args.rounds):
        for side, code in (("before", before), ("after", str(ROOT))):
            for name, seconds in measure(code, table, fields, args.steps, args.work, phases=True).items():
                best[side][name] = min(best[side].get(name, float("inf")), seconds)
    for name in best["after"]:
        print(f"  {name:9s} before {best['before'][name] * 1000:8.1f} ms  after {best['after'][name] * 1000:8.1f} ms  "
              f"{best['before'][name] / best['after'][name]:.2f}x", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="checkout of the code to compare against")
    parser.add_argument("--table", required=True, help="mask table to train on")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shapes", nargs="+", default=["base", "hiera-s"])
    parser.add_argument("--work", default="runs/bench_train_speed")
    parser.add_argument("--phases", action="store_true", help="time the parts of a step instead of a training run")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                        help="the after side's TrainConfig.precision (e.g. --before . --precision bf16: "
                             "bf16 autocast against fp32 on the same code)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.makedirs(args.work, exist_ok=True)
    results = {}
    for shape in args.shapes:
        fields = shape_fields(shape, args.work)
        if args.phases:
            print(f"{shape}: median time per part of a step (faster round)", flush=True)
            results[shape] = compare_phases(os.path.abspath(args.before), args.table, fields, args)
            continue
        best = {"before": 0.0, "after": 0.0}
        sides = {"before": fields, "after": dict(fields, precision=args.precision) if args.precision else fields}
        for _ in range(args.rounds):
            for side, code in (("before", os.path.abspath(args.before)), ("after", str(ROOT))):
                speed = measure(code, args.table, sides[side], args.steps, args.work)["masks_per_second"]
                best[side] = max(best[side], speed)
        results[shape] = {**best, "speedup": best["after"] / best["before"]}
        print(f"{shape}: before {best['before']:.2f} masks/s, after {best['after']:.2f} masks/s, "
              f"{results[shape]['speedup']:.2f}x", flush=True)
    Path(args.work, "phases.json" if args.phases else "speed.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
