"""Whole-image mining: time per image at 512 and 1024 px, and mining quality on procedural scenes.

Usage:
  .venv/bin/python benchmarks/bench_mining.py timing [--images 4] [--variant default]
  .venv/bin/python benchmarks/bench_mining.py quality [--n 100] [--seed 0] [--size 512] \
      [--variant default] [--variant before] [--variant crops2] [--variant scene] [--variant crops2_scene] ...
  .venv/bin/python benchmarks/bench_mining.py divide [--n 25]   (where object recall is lost)
  .venv/bin/python benchmarks/bench_mining.py pictures --out docs/images

Quality (weight-free descriptor backbone): for every ground-truth node of the scenes (level 0 =
objects, 1 = parts, 2 = sub-parts, 3 = sub-sub-parts), recall at IoU >= 0.5 against all mined
masks of its image, mean best IoU, and the mean absolute error between the granularity of the
best-matching mined mask and the node's ground-truth granularity (matched nodes only); plus
class-agnostic COCO AR@100 (pycocotools, segm, useCats=0, mined masks ranked by score).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BEFORE = {"divide_crops": 1, "scene_group": False, "refine": False}  # the miner before issue 13 item 4
VARIANTS = {
    "default": {},
    "before": BEFORE,
    "rounds6": {**BEFORE, "rounds": 6},
    "zero": {**BEFORE, "masking": "zero"},
    "cutler": {**BEFORE, "round_rule": "cutler", "masking": "zero"},  # CutLER's loop and masking, as the release
    "cutler_remove": {**BEFORE, "round_rule": "cutler"},
    "tau0.15": {**BEFORE, "tau": 0.15},
    "refine_before": {**BEFORE, "refine": True},
    "rounds6_refine": {**BEFORE, "rounds": 6, "refine": True},
    "crops2": {"scene_group": False, "refine": False},  # multi-scale divide only
    "crops3": {"divide_crops": 3, "scene_group": False, "refine": False},
    "scene": {"divide_crops": 1, "refine": False},  # scene group only
    "crops2_scene": {"refine": False},  # the default without refinement
    "crops3_scene": {"divide_crops": 3, "refine": False},
    "crops2_floor1": {"instance_min_area": 0.01, "refine": False},
}


def _resize_long(image: np.ndarray, long_side: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    s = long_side / max(h, w)
    return np.asarray(Image.fromarray(image).resize((round(w * s), round(h * s)), Image.BICUBIC))


def timing(args: argparse.Namespace) -> None:
    from unsamv2.mining import Miner, MinerConfig
    from unsamv2.scenes import generate_scene, sample_photos

    miner = Miner(MinerConfig(**VARIANTS[args.variant]))
    photos = list(sample_photos().values())[: args.images]
    scenes = [generate_scene(seed=s, size=1024).image for s in range(args.images)]
    miner.mine(photos[0][:256, :256])  # warm up (numba, torch)
    print(f"{'long side':>9} {'images':>6} {'median s':>9} {'median cpu s':>12} {'masks/img':>9}")
    for side in (512, 1024):
        walls, cpus, counts = [], [], []
        for img in photos + scenes:
            img = _resize_long(img, side)
            w, c = time.perf_counter(), time.process_time()
            counts.append(len(miner.mine(img)))
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
        print(f"{side:>9} {len(walls):>6} {statistics.median(walls):>9.2f} "
              f"{statistics.median(cpus):>12.2f} {statistics.median(counts):>9.0f}")


def _score_image(image_id, scene, mined, per_level, dets) -> None:
    """Add one image's best-IoU / granularity errors per GT level and its COCO detections."""
    from pycocotools import mask as mask_utils

    from unsamv2.data.rle import encode_rles, to_coco_segmentation

    h, w = scene.image.shape[:2]
    dt_rles = encode_rles(np.stack([m.mask for m in mined])) if mined else []
    for m, rle in zip(mined, dt_rles, strict=True):
        dets.append({"image_id": image_id, "category_id": 1, "score": m.score,
                     "segmentation": to_coco_segmentation(rle, h, w)})
    if not scene.nodes:
        return
    gt = [{"size": [h, w], "counts": c} for c in encode_rles(np.stack([n.mask for n in scene.nodes]))]
    if mined:
        dt = [{"size": [h, w], "counts": c} for c in dt_rles]
        iou = np.asarray(mask_utils.iou(dt, gt, [0] * len(gt))).reshape(len(dt), len(gt))
    else:
        iou = np.zeros((0, len(gt)))
    for j, node in enumerate(scene.nodes):
        best = int(np.argmax(iou[:, j])) if len(mined) else -1
        b_iou = float(iou[best, j]) if best >= 0 else 0.0
        g_err = abs(mined[best].granularity - node.granularity) if b_iou >= 0.5 else np.nan
        per_level.setdefault(int(node.level), []).append((b_iou, g_err))


def _average_recall(coco_images, coco_anns, dets) -> float:
    """Class-agnostic COCO AR@100 (segm) with pycocotools."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_coco = COCO()
    gt_coco.dataset = {"images": coco_images, "annotations": coco_anns,
                       "categories": [{"id": 1, "name": "object"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt_coco.createIndex()
        if not dets:
            return 0.0
        ev = COCOeval(gt_coco, gt_coco.loadRes([dict(d) for d in dets]), "segm")  # loadRes adds keys
        ev.params.useCats = 0
        ev.params.maxDets = [1, 10, 100]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[8])


def quality(args: argparse.Namespace) -> None:
    from unsamv2.mining import Miner, MinerConfig
    from unsamv2.scenes import iter_scenes, scene_to_coco

    for variant in args.variant or ["default"]:
        miner = Miner(MinerConfig(**VARIANTS[variant]))
        coco_images, coco_anns, dets, per_level = [], [], [], {}
        next_id, n_masks, seconds = 1, 0, 0.0
        for i, scene in enumerate(iter_scenes(args.n, seed=args.seed, size=args.size)):
            info, anns = scene_to_coco(scene, i, next_id, f"{i:05d}.png")
            coco_images.append(info)
            coco_anns.extend(anns)
            next_id += len(scene.nodes)
            start = time.perf_counter()
            mined = miner.mine(scene.image)
            seconds += time.perf_counter() - start
            n_masks += len(mined)
            _score_image(i, scene, mined, per_level, dets)
        ar100 = _average_recall(coco_images, coco_anns, dets)
        n = len(coco_images)
        print(f"\n## variant {variant}: {VARIANTS[variant] or 'MinerConfig() defaults'}; "
              f"{n} scenes {args.size}px seed {args.seed}; {n_masks / n:.1f} masks/image; "
              f"{seconds / n:.2f} s/image; AR@100 = {ar100:.3f}", flush=True)
        print("| level | GT masks | recall@0.5 | mean best IoU | granularity MAE (matched) | AR@100 |")
        print("|---|---|---|---|---|---|")
        rows = sorted(per_level.items())
        everything = [x for _, v in rows for x in v]
        # AR@100 of one level: the same top-100 detections per image against that level's masks only
        ar = {str(k): _average_recall(coco_images, [a for a in coco_anns if a["level"] == k], dets) for k, _ in rows}
        ar["all"] = ar100
        recall = {}
        for name, vals in [(str(k), v) for k, v in rows] + [("all", everything)]:
            ious = np.array([v[0] for v in vals])
            errs = np.array([v[1] for v in vals])
            mae = np.nanmean(errs) if np.isfinite(errs).any() else float("nan")
            recall[name] = (ious >= 0.5).mean()
            print(f"| {name} | {len(vals)} | {recall[name]:.3f} | {ious.mean():.3f} | {mae:.3f} | {ar[name]:.3f} |",
                  flush=True)
        print("summary | variant | masks/image | s/image | " + " | ".join(recall) + " | AR@100 |")
        print(f"summary | {variant} | {n_masks / n:.1f} | {seconds / n:.2f} | "
              + " | ".join(f"{v:.3f}" for v in recall.values()) + f" | {ar100:.3f} |", flush=True)


def pictures(args: argparse.Namespace) -> None:
    from PIL import Image

    from unsamv2.mining import Miner, MinerConfig
    from unsamv2.mining.overlay import band_grid
    from unsamv2.scenes import generate_scene, sample_photos

    miner = Miner(MinerConfig())
    os.makedirs(args.out, exist_ok=True)
    scenes = [(f"scene seed {s}", generate_scene(seed=s, size=512).image) for s in (3, 5, 8)]
    photos = [(k, v) for k, v in sample_photos().items() if k in ("astronaut", "coffee", "chelsea")]
    for name, items in (("mining_scenes.png", scenes), ("mining_photos.png", photos)):
        rows = [(label, img, miner.mine(img)) for label, img in items]
        grid = Image.fromarray(band_grid(rows, tile=176)).quantize(colors=160, method=Image.MEDIANCUT)
        path = os.path.join(args.out, name)
        grid.save(path, optimize=True)
        print(f"wrote {path} ({os.path.getsize(path) // 1024} KiB)")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def divide(args: argparse.Namespace) -> None:
    """Where object recall is lost: MaskCut candidates and instances vs the scenes' objects."""
    from unsamv2.mining import Miner, MinerConfig
    from unsamv2.mining.masks import instance_part_relation
    from unsamv2.scenes import iter_scenes

    cfg = MinerConfig(**VARIANTS[args.variant])
    miner = Miner(cfg)
    n_cands, rows = [], []  # rows: (area, matched by a candidate, covered by instances, recalled)
    for scene in iter_scenes(args.n, seed=args.seed, size=args.size):
        divided = miner.divide_views(scene.image)
        cands = divided.masks
        relation = instance_part_relation(cands, cfg.instance_min_area, cfg.containment, divided.view_areas)
        union = np.zeros(scene.image.shape[:2], dtype=bool)
        for i in relation:
            union |= cands[i]
        mined = miner.mine(scene.image)
        n_cands.append(len(cands))
        for node in (n for n in scene.nodes if n.level == 0):
            rows.append((node.mask.mean(), max((_iou(c, node.mask) for c in cands), default=0.0) >= 0.5,
                         (node.mask & union).sum() / node.mask.sum() > 0.5,
                         max((_iou(m.mask, node.mask) for m in mined), default=0.0) >= 0.5))
    r = np.array(rows, dtype=np.float64)
    covered = r[:, 2] > 0
    print(f"{args.n} scenes {args.size}px seed {args.seed}, variant {args.variant}: {np.mean(n_cands):.1f} MaskCut candidates and "
          f"{len(r) / args.n:.1f} objects per scene")
    print(f"objects matched by a candidate (IoU >= 0.5): {r[:, 1].mean():.2f}; under the "
          f"{cfg.instance_min_area:.0%} instance-area floor: {(r[:, 0] <= cfg.instance_min_area).mean():.2f}")
    print(f"objects > 50 % covered by instances: {covered.mean():.2f}; recall@0.5 of covered "
          f"{r[covered, 3].mean():.2f}, of the others {r[~covered, 3].mean() if (~covered).any() else 0:.2f}")


def main() -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("timing")
    t.add_argument("--images", type=int, default=4, help="photos and scenes each")
    t.add_argument("--variant", default="default", choices=sorted(VARIANTS))
    q = sub.add_parser("quality")
    q.add_argument("--n", type=int, default=100)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--size", type=int, default=512)
    q.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    d = sub.add_parser("divide", help="where object recall is lost (candidates, coverage)")
    d.add_argument("--n", type=int, default=25)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--size", type=int, default=512)
    d.add_argument("--variant", default="default", choices=sorted(VARIANTS))
    p = sub.add_parser("pictures")
    p.add_argument("--out", default="docs/images")
    args = ap.parse_args()
    {"timing": timing, "quality": quality, "divide": divide, "pictures": pictures}[args.what](args)


if __name__ == "__main__":
    main()
