"""``make demo``: the end-to-end path on the embedded default — procedural scenes plus sample
photos, mined on a local Ray (weight-free features), the tiny model trained on the mined
(mask, g) pairs, evaluated on held-out procedural scenes — then where everything went.

Run: ``python -m flows.demo [--out runs/demo] [--steps 40] [--train-backend local|ray]``.

The random-weight tiny model cannot learn to segment in a few CPU minutes (docs/training.md, "What
the tiny model learns"): the demo shows the whole path and its outputs, not a useful model.
"""

from __future__ import annotations

import argparse
import os

from prefect import flow, get_run_logger

from flows.mine_and_train import mine_and_train
from tasks.data import make_demo_inputs

# What the demo trains and evaluates (a few minutes on a 2-core CPU; see docs/training.md).
DEMO_TRAINING = dict(model="tiny", trainable="full", train_batch_size=2, max_masks_per_image=8,
                     lr=1e-3, min_lr=1e-4, checkpoint_every=20, train_device="cpu")
DEMO_EVALUATION = dict(eval_scenes="scenes:2:1000:256", eval_policies=["oracle", "g=1"], eval_max_clicks=3,
                       eval_max_objects=4)


@flow(name="demo", description="End-to-end demo on the embedded default.")
def demo(out_dir: str = "runs/demo", scenes: int = 12, size: int = 256, seed: int = 0, steps: int = 40,
         train_backend: str = "local") -> dict:
    """Procedural scenes + photos -> ``mine-and-train`` (local Ray, 2 mining actors, tiny model)."""
    inputs = make_demo_inputs(os.path.join(out_dir, "data"), scenes, seed, size)
    result = mine_and_train(input_uri=inputs["images"], output_uri=out_dir, shard_size=8, mine_backend="ray",
                            actors=2, val_fraction=0.15, steps=steps, train_backend=train_backend,
                            **DEMO_TRAINING, **DEMO_EVALUATION)
    get_run_logger().info("demo finished; checkpoint %s, report %s", result["checkpoint_uri"],
                          result["report"]["html"])
    return {"inputs": inputs, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--steps", type=int, default=40, help="training steps of the tiny model")
    parser.add_argument("--train-backend", default="local", choices=["local", "ray"])
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    out = os.path.abspath(args.out)
    result = demo(out_dir=out, scenes=args.scenes, steps=args.steps, train_backend=args.train_backend)
    _print(result)


def _print(result: dict) -> None:
    training, metrics, probe = result["training"], result["metrics"], result["probe"]
    print("\nunsamv2 demo: done")
    print(f"  inputs       {result['inputs']['images']} (ground truth {result['inputs']['ground_truth']})")
    print(f"  mask table   {result['table_uri']} (statistics and split in stats/)")
    print(f"  checkpoint   {result['checkpoint_uri']}")
    print(f"               {training['steps']} steps of the tiny model, loss {training['first_loss']:.2f} -> "
          f"{training['final_loss']:.2f}, {training['masks_per_second']:.1f} masks/s")
    print(f"  report       {result['report']['html']} (report.md, report.json, plots/)")
    line = f"               held-out scenes, IoU after 1 click (oracle g): {metrics['scenes-objects/oracle/1-IoU']:.3f}"
    if probe:
        line += f"; at the ground-truth g {probe['gt_g']:.3f} vs best fixed g {probe['best_fixed']:.3f}"
    print(line)
    print(f"  summary      {result['summary_uri']}")
    print("  (the random tiny model learns little in this budget; see docs/training.md)")


if __name__ == "__main__":
    main()
