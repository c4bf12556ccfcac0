"""``unsamv2 mine`` (a folder / s3:// prefix of images → mask table) and ``unsamv2 stats``."""

from __future__ import annotations

import argparse


def add_miner_arguments(p: argparse.ArgumentParser) -> None:
    """Miner options shared by ``mine`` and ``mine-image``-like commands."""
    p.add_argument("--features", default="descriptor", choices=["descriptor", "dinov2", "dinov3"],
                   help="patch features: the weight-free descriptor (default) or a DINO ViT")
    p.add_argument("--backbone-weights", default=None, help="DINO checkpoint: local path or s3:// URI")
    p.add_argument("--backbone-normalization", default="imagenet", choices=["imagenet", "sat493m"],
                   help="input mean/std of the DINO checkpoint (sat493m: DINOv3's satellite weights)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (per actor)")
    p.add_argument("--candidates", default=None,
                   help="divide from a detector's candidates instead of MaskCut: a COCO .json (file_name keys, "
                        "annotations with score) or a mask table, local or s3:// (the release's CutLER divide)")
    p.add_argument("--candidate-min-score", type=float, default=0.3,
                   help="keep candidates with score above this (0.3 as the release)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mine", help="mine hierarchical pseudo-masks from a folder or s3:// prefix of images",
                       description="Plan a manifest, mine every image (local or Ray actors) and write the "
                                   "Parquet mask table in resumable shards. A rerun skips finished shards.")
    p.add_argument("input", help="folder, s3:// prefix, or .txt list of image paths/URIs")
    p.add_argument("output", help="output table root: folder or s3:// prefix")
    p.add_argument("--shard-size", type=int, default=256, help="images per shard (fixed for an output)")
    p.add_argument("--backend", default="local", choices=["local", "ray"])
    p.add_argument("--actors", type=int, default=1, help="Ray actors (each loads the miner once)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0)
    p.add_argument("--gpus-per-actor", type=float, default=0.0, help="fractional values share a GPU")
    p.add_argument("--batch-size", type=int, default=4, help="images per actor call")
    p.add_argument("--ray-address", default=None, help="existing cluster from one of its nodes: auto or head-ip:6379 (Ray Client ray:// is not supported by Ray Data)")
    p.add_argument("--max-restarts", type=int, default=4, help="actor restarts / task retries")
    p.add_argument("--read-attempts", type=int, default=4,
                   help="attempts per image on transient storage errors (403, throttling, 5xx, timeouts), with "
                        "backoff; images still unreadable leave their shard incomplete for a rerun")
    add_miner_arguments(p)
    p.set_defaults(func=_mine)

    s = sub.add_parser("stats", help="statistics (JSON + PNG) and a train/val split of a mask table, with Dask")
    s.add_argument("table", help="table root folder or s3:// prefix")
    s.add_argument("--out", default=None, help="output folder (default: TABLE/stats)")
    s.add_argument("--val-fraction", type=float, default=0.1)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_stats)


def _mine(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unsamv2.jobs.mine import MineJob, run_mine
    from unsamv2.mining import MinerConfig

    miner = MinerConfig(backbone=args.features, backbone_weights=args.backbone_weights, device=args.device,
                        backbone_normalization=args.backbone_normalization, candidates=args.candidates,
                        candidate_min_score=args.candidate_min_score)
    job = MineJob(args.input, args.output, shard_size=args.shard_size, backend=args.backend,
                  batch_size=args.batch_size, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                  gpus_per_actor=args.gpus_per_actor, ray_address=args.ray_address,
                  max_restarts=args.max_restarts, read_attempts=args.read_attempts, miner=miner)
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
