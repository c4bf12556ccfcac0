"""Time the ``mine-and-train/local`` deployment's defaults end to end, as a user's run would go.

Reads the deployment's parameters from ``prefect.yaml``, runs the ``mine-and-train`` flow function
with them on ``--input`` (default: the ``make demo`` images) on a local Ray (``ray_address`` None
instead of the stack's ``auto``; everything else as deployed), and prints the wall time, the
training summary, the one-click IoU of each evaluation policy and the granularity probe.

Run: ``.venv/bin/python benchmarks/bench_mine_and_train_local.py [--input runs/demo/data/images]
[--out runs/bench_mt_local]`` (after ``make demo``, which writes the input images).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def deployment_parameters() -> dict:
    """The ``mine-and-train/local`` parameters of prefect.yaml, on a local Ray."""
    import yaml

    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployment = next(d for d in doc["deployments"]
                      if d["name"] == "local" and d["entrypoint"].startswith("flows/mine_and_train.py"))
    params = dict(deployment["parameters"])
    params["mining"] = {**params["mining"], "ray_address": None}
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="runs/demo/data/images")
    parser.add_argument("--out", default="runs/bench_mt_local")
    args = parser.parse_args()
    from flows.mine_and_train import mine_and_train

    shutil.rmtree(args.out, ignore_errors=True)
    params = deployment_parameters()
    print(f"parameters: {params}", flush=True)
    started = time.perf_counter()
    result = mine_and_train(input_uri=os.path.abspath(args.input), output_uri=os.path.abspath(args.out), **params)
    print(f"wall {time.perf_counter() - started:.0f} s")
    training = result["training"]
    print(f"training: {training['steps']} steps, loss {training['first_loss']:.3f} -> {training['final_loss']:.3f}, "
          f"{training['masks_per_second']:.1f} masks/s")
    print("IoU after 1 click (objects / parts):")
    for policy in params["evaluation"].get("policies", ()):
        objects = result["metrics"].get(f"scenes-objects/{policy}/1-IoU", float("nan"))
        parts = result["metrics"].get(f"scenes-parts/{policy}/1-IoU", float("nan"))
        print(f"  {policy:<12} {objects:.3f} / {parts:.3f}")
    probe = result.get("probe") or {}
    if probe:
        print(f"probe: own g {probe['gt_g']:.3f}, best fixed g={probe['best_fixed_g']:g} {probe['best_fixed']:.3f}")


if __name__ == "__main__":
    main()
