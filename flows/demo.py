"""``make demo``: the end-to-end path on the embedded default (local Ray, procedural scenes plus
sample photos, weight-free features, local files), then a summary of where everything went.

Run: ``python -m flows.demo [--out runs/demo]``.
"""

from __future__ import annotations

import argparse
import os

from prefect import flow, get_run_logger

from flows.mine import mine
from tasks.data import make_demo_inputs


@flow(name="demo", description="End-to-end demo on the embedded default.")
def demo(out_dir: str = "runs/demo", scenes: int = 12, size: int = 256, seed: int = 0) -> dict:
    """Procedural scenes + photos → ``mine`` (local Ray, 2 actors)."""
    inputs = make_demo_inputs(os.path.join(out_dir, "data"), scenes, seed, size)
    table = os.path.join(out_dir, "mask_table")
    result = mine(input_uri=inputs["images"], output_uri=table, shard_size=8, backend="ray", actors=2)
    get_run_logger().info("demo finished; mask table at %s", table)
    return {"inputs": inputs, "table": table, "mine": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--scenes", type=int, default=12)
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    result = demo(out_dir=out, scenes=args.scenes)
    summary, stats = result["mine"]["summary"], result["mine"]["stats"]
    print("\nunsamv2 demo: done")
    print(f"  inputs       {result['inputs']['images']} (ground truth {result['inputs']['ground_truth']})")
    print(f"  mask table   {result['table']} ({summary['images']} images, {summary['masks']} masks)")
    print(f"  statistics   {os.path.join(result['table'], 'stats')} (stats.json, stats.png, split.parquet;"
          f" {stats['masks_per_image']['mean']:.1f} masks per image)")
    print("  inspect with: unsamv2 table info " + result["table"])


if __name__ == "__main__":
    main()
