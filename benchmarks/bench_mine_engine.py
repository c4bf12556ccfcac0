"""Distributed-mining engine benchmarks (issue: distributed mining).

1. Throughput with the weight-free features: local backend vs Ray with 1 and 2 actors, same images,
   one run (Ray is started once beforehand; its start-up time is reported separately).
2. Engine overhead: Ray with a no-op miner vs reading + decoding the same images in a plain loop.
3. Manifest planning for a simulated 1,000,000-image listing: time and peak memory.
4. Storage: Parquet bytes per mask vs the official release's per-image JSON layout, same masks.

Run: ``python benchmarks/bench_mine_engine.py [--images 96] [--size 256] [--listing 1000000]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
import tracemalloc

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def write_images(folder: str, n: int, size: int) -> None:
    from PIL import Image

    from unsamv2.scenes import iter_scenes

    os.makedirs(folder, exist_ok=True)
    for i, scene in enumerate(iter_scenes(n, seed=2024, size=size)):
        Image.fromarray(scene.image).save(os.path.join(folder, f"scene_{i:04d}.png"))


def run(job_kwargs: dict, folder: str, tmp: str, name: str) -> tuple[float, object]:
    from unsamv2.jobs.mine import MineJob, run_mine

    out = os.path.join(tmp, name)
    start = time.perf_counter()
    summary = run_mine(MineJob(folder, out, **job_kwargs))
    return time.perf_counter() - start, summary


def throughput(folder: str, tmp: str, n: int) -> list[tuple[str, float, float]]:
    import ray

    from unsamv2.backends.ray_data import init_ray

    rows = []
    secs, _ = run({"shard_size": 4}, folder, tmp, "local")
    rows.append(("local backend (in-process)", secs, n / secs))
    t0 = time.perf_counter()
    init_ray(None, include_dashboard=False)
    rows.append(("(Ray local start-up, once)", time.perf_counter() - t0, float("nan")))
    for actors in (1, 2):
        secs, _ = run({"shard_size": 4, "backend": "ray", "actors": actors, "batch_size": 2}, folder, tmp, f"ray{actors}")
        rows.append((f"Ray Data, {actors} actor(s)", secs, n / secs))
    big = os.path.join(tmp, "images-x8")  # the same images 8 times: fixed cost vs cost per image
    os.makedirs(big)
    for k in range(8):
        for name in os.listdir(folder):
            os.symlink(os.path.join(folder, name), os.path.join(big, f"{k}_{name}"))
    noop = {"shard_size": 4, "backend": "ray", "actors": 1, "miner_kind": "noop"}
    small, large = [], []
    for rep in range(3):  # alternate, keep the fastest of each: start-up time varies by seconds
        small.append(run(noop, folder, tmp, f"noop-{rep}")[0])
        large.append(run(noop, big, tmp, f"noop8-{rep}")[0])
    rows.append(("Ray Data, 1 actor, no-op miner", min(small), n / min(small)))
    rows.append((f"Ray Data, 1 actor, no-op miner, {8 * n} images", min(large), 8 * n / min(large)))
    ray.shutdown()
    start = time.perf_counter()
    from unsamv2.data.images import load_image

    for name in sorted(os.listdir(folder)):
        load_image(os.path.join(folder, name))
    secs = time.perf_counter() - start
    rows.append(("read + decode only (plain loop)", secs, n / secs))
    return rows


def manifest_planning(tmp: str, n: int) -> dict:
    from unsamv2.pipeline.manifest import plan_manifest

    entries = ((f"bucket/part-{i // 10000:04d}/img_{i:08d}.jpg", f"s3://bucket/part-{i // 10000:04d}/img_{i:08d}.jpg")
               for i in range(n))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    info = plan_manifest("s3://bucket/", os.path.join(tmp, "manifest"), 1000, entries=entries)
    secs = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"images": info.num_images, "shards": info.num_shards, "seconds": secs,
            "python_peak_mib": peak / 2**20, "rss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024}


def storage_size(table_root: str) -> dict:
    from unsamv2.data import read_mask_table, to_coco_segmentation

    table = read_mask_table(table_root)
    parquet = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(table_root, "shards"))
                  for f in fs if f.endswith(".parquet"))
    official, masks = 0, 0
    for row in table.to_pylist():  # the official layout: one JSON per image, indent=2 as it writes them
        anns = [{"id": k + 1, "image_id": row["image_id"], "category_id": 1, "iscrowd": 0, "area": m["area"],
                 "bbox": m["bbox"], "segmentation": to_coco_segmentation(m["rle"], row["height"], row["width"]),
                 "width": row["width"], "height": row["height"], "is_divide": m["origin"] == "divide",
                 "granularity": m["granularity"], "instance_id": m["instance_id"], "is_part": m["is_part"],
                 "is_conquer": m["origin"] == "conquer"} for k, m in enumerate(row["masks"])]
        doc = {"info": {}, "licenses": [], "categories": [{"id": 1, "name": "fg"}],
               "image": {"id": row["image_id"], "file_name": row["image_uri"], "height": row["height"],
                         "width": row["width"]}, "annotations": anns}
        official += len(json.dumps(doc, indent=2).encode())
        masks += len(anns)
    return {"masks": masks, "parquet_bytes_per_mask": parquet / max(masks, 1),
            "official_json_bytes_per_mask": official / max(masks, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--listing", type=int, default=1_000_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-mine-")
    try:
        folder = os.path.join(tmp, "images")
        write_images(folder, args.images, args.size)
        print(f"## throughput: {args.images} procedural scenes at {args.size} px, descriptor features\n")
        print("| run | seconds | images/s |\n|---|---:|---:|")
        rows = throughput(folder, tmp, args.images)
        for name, secs, ips in rows:
            print(f"| {name} | {secs:.2f} | {ips:.2f} |")
        by = {name: ips for name, _, ips in rows}
        secs = {name: t for name, t, _ in rows}
        print(f"\nparallel efficiency 2 actors vs 1: {by['Ray Data, 2 actor(s)'] / (2 * by['Ray Data, 1 actor(s)']):.2f}")
        per_image = (secs[f"Ray Data, 1 actor, no-op miner, {8 * args.images} images"]
                     - secs["Ray Data, 1 actor, no-op miner"]) / (7 * args.images)
        print(f"engine cost per image (no-op miner, from {args.images} vs {8 * args.images} images): "
              f"{1000 * per_image:.1f} ms; fixed cost per run: "
              f"{secs['Ray Data, 1 actor, no-op miner'] - per_image * args.images:.1f} s")
        print("\n## manifest planning, simulated listing\n")
        print(json.dumps(manifest_planning(tmp, args.listing), indent=1))
        print("\n## storage\n")
        print(json.dumps(storage_size(os.path.join(tmp, "local")), indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
