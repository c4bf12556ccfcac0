"""``unsamv2 mine-image``: mine the (mask, granularity) pseudo-labels of one image."""

from __future__ import annotations

import argparse

_FLAG_FIELDS = (  # (flag, MinerConfig field, type)
    ("--backbone", "backbone", str),
    ("--backbone-weights", "backbone_weights", str),
    ("--backbone-arch", "backbone_arch", str),
    ("--patch-size", "patch_size", int),
    ("--divide-long-side", "divide_long_side", int),
    ("--tau", "tau", float),
    ("--rounds", "rounds", int),
    ("--divide-crops", "divide_crops", int),
    ("--masking", "masking", str),
    ("--conquer-long-side", "conquer_long_side", int),
    ("--device", "device", str),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mine-image",
        help="mine pseudo-masks with granularity from one image (divide and conquer)",
        description="Mine the masks of one image and write a one-row mask table (Parquet), "
        "optionally COCO JSON, and one overlay picture per granularity band.",
    )
    p.add_argument("image", help="image file (local path or s3:// URI)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--config", default=None, help="YAML/JSON file with MinerConfig fields")
    for flag, field, kind in _FLAG_FIELDS:
        p.add_argument(flag, dest=field, type=kind, default=None, help=f"MinerConfig.{field}")
    p.add_argument("--thresholds", default=None, help="comma-separated merge thresholds, e.g. 0.9,0.7,0.5")
    p.add_argument("--refine", action="store_true", default=None, help="guided-filter refinement (the default)")
    p.add_argument("--no-refine", action="store_true", help="no refinement (faster, coarser masks)")
    p.add_argument("--no-scene-group", action="store_true", help="do not conquer the whole image as one more group")
    p.add_argument("--coco", action="store_true", help="also write masks.json (COCO, with granularity)")
    p.set_defaults(func=_run)


def _config(args: argparse.Namespace):  # -> MinerConfig
    import json

    from unsamv2.data import storage
    from unsamv2.errors import InputError
    from unsamv2.mining.config import MinerConfig

    values: dict = {}
    if args.config:
        import yaml

        text = storage.read_bytes(args.config).decode()
        try:
            values = (json.loads(text) if args.config.endswith(".json") else yaml.safe_load(text)) or {}
        except (ValueError, yaml.YAMLError) as exc:
            raise InputError(f"{args.config} is not valid YAML/JSON ({exc}); fix the file.") from exc
        if not isinstance(values, dict):
            raise InputError(f"{args.config} must hold a mapping of MinerConfig fields.")
    for _, field, _ in _FLAG_FIELDS:
        if getattr(args, field) is not None:
            values[field] = getattr(args, field)
    if args.thresholds:
        try:
            values["thresholds"] = tuple(float(t) for t in args.thresholds.split(","))
        except ValueError as exc:
            raise InputError(f"--thresholds must be comma-separated numbers, got {args.thresholds!r}.") from exc
    if args.refine:
        values["refine"] = True
    if args.no_refine:
        values["refine"] = False
    if args.no_scene_group:
        values["scene_group"] = False
    return MinerConfig.from_dict(values)


def _run(args: argparse.Namespace) -> int:
    import os
    import sys
    import time

    import pyarrow.parquet as pq
    from PIL import Image

    from unsamv2.data.schema import image_row, rows_to_table
    from unsamv2.mining import Miner, to_mask_records
    from unsamv2.mining.overlay import band_grid, band_label, band_overlays

    config = _config(args)
    from unsamv2.data.images import read_image

    loaded = read_image(args.image)
    image = loaded.rgb
    os.makedirs(args.out, exist_ok=True)
    print(f"mining {args.image} ({image.shape[1]}x{image.shape[0]}) with backbone "
          f"{config.backbone} ...", file=sys.stderr)
    start = time.perf_counter()
    mined = Miner(config).mine(image)
    seconds = time.perf_counter() - start
    row = image_row(
        image_id=0, image_uri=args.image, producer_config_hash=config.config_hash(),
        content_hash=loaded.content_hash, height=image.shape[0], width=image.shape[1],
        masks=to_mask_records(mined),
    )
    table_path = os.path.join(args.out, "masks.parquet")
    pq.write_table(rows_to_table([row]), table_path, compression="zstd")
    written = [table_path]
    if args.coco:
        written.append(_write_coco(args, image, mined))
    for band, picture, _ in band_overlays(image, mined):
        path = os.path.join(args.out, f"overlay_{band_label(band)}.png")
        Image.fromarray(picture).save(path)
        written.append(path)
    Image.fromarray(band_grid([(os.path.basename(args.image), image, mined)])).save(
        os.path.join(args.out, "overview.png"))
    groups = len({m.instance_id for m in mined})
    print(f"mined {len(mined)} masks in {groups} instance groups in {seconds:.1f} s; wrote "
          f"{len(written) + 1} files to {args.out} (masks.parquet, overlay_*.png, overview.png"
          f"{', masks.json' if args.coco else ''})")
    return 0


def _write_coco(args: argparse.Namespace, image, mined) -> str:
    import json
    import os

    from unsamv2.data.rle import encode_rle, to_coco_segmentation

    h, w = image.shape[:2]
    anns = [
        {
            "id": i + 1, "image_id": 0, "category_id": 1, "iscrowd": 0,
            "segmentation": to_coco_segmentation(encode_rle(m.mask), h, w),
            "area": m.area, "bbox": list(m.bbox), "granularity": m.granularity,
            "instance_id": m.instance_id, "is_part": m.is_part, "origin": m.origin,
            "score": m.score,
        }
        for i, m in enumerate(mined)
    ]
    doc = {
        "images": [{"id": 0, "file_name": os.path.basename(args.image), "height": h, "width": w}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "object"}],
    }
    path = os.path.join(args.out, "masks.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path
