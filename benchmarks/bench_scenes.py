"""How fast are the procedural scenes? Time per scene by stage and image size, in one run.

    .venv/bin/python benchmarks/bench_scenes.py [--n 10] [--sizes 256 512 1024]

Prints a Markdown table: milliseconds per scene (median over N seeds) for generating the scene
(``generate_scene``: background, objects, occlusion, pruning, rendering, masks) and for turning it
into a COCO dataset entry (PNG encoding + compressed RLE of every mask), plus nodes per scene.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from unsamv2.scenes import generate_scene, scene_seed, scene_to_coco
from unsamv2.scenes.dataset import encode_png


def _time(fn):
    start = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - start) * 1000.0


def bench(size: int, n: int) -> dict[str, float]:
    generate_scene(0, size)  # warm-up (imports, allocator)
    gen_ms, coco_ms, nodes, objects = [], [], [], []
    for i in range(n):
        scene, ms = _time(lambda i=i: generate_scene(scene_seed(0, i), size))
        gen_ms.append(ms)
        _, ms = _time(lambda scene=scene: (encode_png(scene.image), scene_to_coco(scene, 1, 1, "x.png")))
        coco_ms.append(ms)
        nodes.append(len(scene.nodes))
        objects.append(len(scene.objects()))
    return {
        "generate_ms": statistics.median(gen_ms),
        "coco_ms": statistics.median(coco_ms),
        "nodes": statistics.mean(nodes),
        "objects": statistics.mean(objects),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="scenes per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    args = parser.parse_args()
    print(f"# procedural scenes, {args.n} scenes per size, {platform.machine()} {platform.python_version()}")
    print("| size | generate_scene ms (median) | PNG + RLE/COCO ms (median) | scenes/s end to end | objects | nodes |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        r = bench(size, args.n)
        per_s = 1000.0 / (r["generate_ms"] + r["coco_ms"])
        print(
            f"| {size} | {r['generate_ms']:.0f} | {r['coco_ms']:.0f} | {per_s:.1f} | {r['objects']:.1f} | {r['nodes']:.1f} |"
        )


if __name__ == "__main__":
    main()
