"""``make demo``: the end-to-end path on the embedded default — procedural scenes plus sample
photos, mined on a local Ray (weight-free features, no labels), the granularity adapter trained on
the mined (mask, g) pairs on top of the shipped pretrained base (base frozen, the paper's
setting), evaluated on held-out procedural scenes against the base's own SAM-2 outputs (single
mask and best of 3) — then where everything went and the one-click numbers.

Run: ``python -m flows.demo [--out runs/demo] [--max-steps 60] [--train-backend local|ray]``.
"""

from __future__ import annotations

import argparse
import os

from prefect import flow, get_run_logger

from flows.mine_and_train import mine_and_train
from tasks.data import make_demo_inputs
from unsamv2.jobs.mine_and_train import PipelineTrainBackend

# How the demo mines, trains and evaluates (a few minutes on a 2-core CPU; see docs/training.md):
# the jobs' defaults (the adapter on the shipped base, 4 images per step, ...) except these. The
# adapter starts from the shipped one (trained on 256 mined scenes, BENCHMARKS.md) and is
# fine-tuned on this run's mined masks at a tenth of its learning rate: 60 steps on 17 images
# from a fresh adapter learn a size prior only (measured: below SAM-2 single, docs/training.md).
DEMO_MINING = dict(shard_size=8, backend="ray", actors=2, val_fraction=0.15)
DEMO_TRAINING = dict(max_masks_per_image=16, lr=1e-4, min_lr=1e-5, checkpoint_every=30, device="cpu",
                     init_adapter="shipped")
DEMO_EVALUATION = dict(scenes="scenes:4:1000:256", policies=["oracle", "g=1", "sam2-single", "sam2-best3"],
                       max_clicks=3, max_objects=4)


@flow(name="demo", description="End-to-end demo on the embedded default.")
def demo(out_dir: str = "runs/demo", scenes: int = 12, size: int = 256, seed: int = 0, max_steps: int = 60,
         train_backend: PipelineTrainBackend = "local") -> dict:
    """Procedural scenes + photos -> ``mine-and-train`` (local Ray, 2 mining actors, adapter on the base)."""
    inputs = make_demo_inputs(os.path.join(out_dir, "data"), scenes, seed, size)
    result = mine_and_train(input_uri=inputs["images"], output_uri=out_dir, mining=DEMO_MINING,
                            training={**DEMO_TRAINING, "max_steps": max_steps}, evaluation=DEMO_EVALUATION,
                            train_backend=train_backend)
    get_run_logger().info("demo finished; checkpoint %s, report %s", result["checkpoint_uri"],
                          result["report"]["html"])
    return {"inputs": inputs, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--max-steps", "--steps", type=int, default=60, help="adapter training steps")
    parser.add_argument("--train-backend", default="local", choices=["local", "ray"])
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    out = os.path.abspath(args.out)
    result = demo(out_dir=out, scenes=args.scenes, max_steps=args.max_steps, train_backend=args.train_backend)
    _print(result)


def _print(result: dict) -> None:
    training, metrics, probe = result["training"], result["metrics"], result["probe"]
    print("\nunsamv2 demo: done")
    print(f"  inputs       {result['inputs']['images']} (ground truth {result['inputs']['ground_truth']})")
    print(f"  mask table   {result['table_uri']} (statistics and split in stats/)")
    print(f"  checkpoint   {result['checkpoint_uri']}")
    print(f"               {training['steps']} steps fine-tuning the shipped adapter on the shipped base, loss {training['first_loss']:.2f} -> "
          f"{training['final_loss']:.2f}, {training['masks_per_second']:.1f} masks/s")
    print(f"  report       {result['report']['html']} (report.md, report.json, plots/)")
    print("  held-out scenes, mean IoU after 1 click (objects / parts):")
    for name, policy in (("UnSAMv2, oracle g", "oracle"), ("UnSAMv2, g=1", "g=1"),
                         ("SAM-2 base, single mask", "sam2-single"), ("SAM-2 base, best of 3", "sam2-best3")):
        objects = metrics.get(f"scenes-objects/{policy}/1-IoU", float("nan"))
        parts = metrics.get(f"scenes-parts/{policy}/1-IoU", float("nan"))
        print(f"               {name:<26} {objects:.3f} / {parts:.3f}")
    if probe:
        print(f"  the dial     every region at its own g {probe['gt_g']:.3f} vs the best single fixed g "
              f"(g={probe['best_fixed_g']:g}) {probe['best_fixed']:.3f}")
    print(f"  summary      {result['summary_uri']}")


if __name__ == "__main__":
    main()
