"""``unsamv2 mine`` (a folder / s3:// prefix of images → mask table) and ``unsamv2 stats``."""

from __future__ import annotations

import argparse

from unsamv2.data.split import DEFAULT_VAL_FRACTION
from unsamv2.jobs.fields import Flag, add_flags, given
from unsamv2.jobs.mine import MineJob
from unsamv2.mining.config import MinerConfig

# The flags of ``unsamv2 mine``: MineJob fields, then the miner's (MinerConfig fields); names,
# types, choices and defaults come from the fields (unsamv2/jobs/fields.py).
JOB_FLAGS = (
    Flag("shard_size", "images per shard (fixed for an output)"),
    Flag("backend", "mine in this process (local) or on Ray actors (ray)"),
    Flag("actors", "Ray actors (each loads the miner once)"),
    Flag("cpus_per_actor", "CPUs each Ray actor reserves"),
    Flag("gpus_per_actor", "GPUs each Ray actor reserves; fractional values share a GPU"),
    Flag("batch_size", "images per actor call"),
    Flag("ray_address", "existing cluster from one of its nodes: auto or head-ip:6379 (Ray Client ray:// is "
                        "not supported by Ray Data)"),
    Flag("max_restarts", "actor restarts / task retries"),
    Flag("read_attempts", "attempts per image on transient storage errors (403, throttling, 5xx, timeouts), "
                          "with backoff; images still unreadable leave their shard incomplete for a rerun"),
    Flag("miner_kind", "the UnSAMv2 miner, or noop (finds nothing: measures the engine's overhead)"),
)
MINER_FLAGS = (
    Flag("backbone", "patch features: the weight-free descriptor or a DINO ViT", aliases=("--features",)),
    Flag("backbone_weights", "DINO checkpoint: local path or s3:// URI"),
    Flag("backbone_normalization", "input mean/std of the DINO checkpoint (sat493m: DINOv3's satellite weights)"),
    Flag("device", "cpu or cuda (per actor)"),
    Flag("candidates", "divide from a detector's candidates instead of MaskCut: a COCO .json (file_name keys, "
                       "annotations with score) or a mask table, local or s3:// (the release's CutLER divide)"),
    Flag("candidate_min_score", "keep candidates with score above this (the release's threshold)"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mine", help="mine hierarchical pseudo-masks from a folder or s3:// prefix of images",
                       description="Plan a manifest, mine every image (local or Ray actors) and write the "
                                   "Parquet mask table in resumable shards. A rerun skips finished shards. "
                                   "--features is the older name of --backbone.")
    p.add_argument("input_uri", metavar="INPUT", help="folder, s3:// prefix, or .txt list of image paths/URIs")
    p.add_argument("output_uri", metavar="OUTPUT", help="output table root: folder or s3:// prefix")
    add_flags(p, MineJob, JOB_FLAGS)
    add_flags(p.add_argument_group("miner (MinerConfig)"), MinerConfig, MINER_FLAGS)
    p.set_defaults(func=_mine)

    s = sub.add_parser("stats", help="statistics (JSON + PNG) and a train/val split of a mask table, with Dask")
    s.add_argument("table", help="table root folder or s3:// prefix")
    s.add_argument("--out", default=None, help="output folder (default: TABLE/stats)")
    s.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_stats)


def build_job(args: argparse.Namespace) -> MineJob:
    """The MineJob of the parsed arguments (validated: one sentence per bad value)."""
    return MineJob.from_values({"input_uri": args.input_uri, "output_uri": args.output_uri,
                                **given(args, JOB_FLAGS), **given(args, MINER_FLAGS)})


def _mine(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unsamv2.jobs.mine import run_mine

    job = build_job(args)
    bar = tqdm(desc="shards", unit="shard", delay=1.0)  # no bar for runs that fail at once

    def progress(done: int, total: int, counters) -> None:  # noqa: ANN001
        bar.total = total
        bar.n = done
        bar.set_postfix(images=counters.images, masks=counters.masks, errors=sum(counters.errors.values()))
        bar.refresh()

    try:
        summary = run_mine(job, on_progress=progress)
    finally:
        bar.close()
    errors = ", ".join(f"{k}={v}" for k, v in summary.errors.items()) or "none"
    print(f"mined {summary.images} images ({summary.ok_images} ok, {summary.masks} masks, errors: {errors}) "
          f"in {summary.seconds:.1f} s; {summary.shards_written} shard(s) written, {summary.shards_skipped} "
          f"already complete; table at {summary.output_uri}")
    if summary.skipped_paths:
        print("skipped input paths: " + ", ".join(f"{k}={v}" for k, v in summary.skipped_paths.items()))
    if summary.dashboard_url:
        print(f"Ray dashboard: {summary.dashboard_url}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from unsamv2.data import storage
    from unsamv2.data.stats import compute_stats

    out = args.out or storage.join(args.table, "stats")
    stats = compute_stats(args.table, out, val_fraction=args.val_fraction, seed=args.seed)
    print(f"{stats.images} images ({stats.ok_images} ok), {stats.masks} masks "
          f"({stats.masks_per_image['mean']:.1f} per image); split train={stats.split.get('train', 0)} "
          f"val={stats.split.get('val', 0)}; wrote stats.json, stats.png, split.parquet to {out}")
    return 0
