"""``unsamv2 scenes``: write procedural hierarchical scenes as a COCO dataset (and sample photos)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scenes",
        help="write procedural scenes with exact object/part/sub-part masks and granularity (COCO JSON)",
        description=(
            "Generate N procedural scenes (objects made of parts made of sub-parts) and write "
            "OUT/images/scene_XXXXX.png plus OUT/annotations.json (COCO, with parent_id, level, "
            "granularity per annotation). OUT may be a local folder or an s3:// prefix."
        ),
    )
    p.add_argument("--out", required=True, help="output folder or s3:// prefix")
    p.add_argument("--n", type=int, default=16, help="number of scenes (default 16)")
    p.add_argument("--seed", type=int, default=0, help="master seed; scene i is the same for any N > i (default 0)")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--photos", action="store_true", help="also write the sample photos bundled with scikit-image to OUT/photos")
    p.set_defaults(func=_run)


def _check_args(args: argparse.Namespace) -> None:
    from unsamv2.errors import InputError
    from unsamv2.scenes.config import MAX_SIZE, MIN_SIZE

    if args.n < 1:
        raise InputError(f"--n must be at least 1, got {args.n}.")
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise InputError(f"--size must be from {MIN_SIZE} to {MAX_SIZE} pixels, got {args.size}.")
    if args.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}.")


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unsamv2.data import storage
    from unsamv2.scenes import write_sample_photos, write_scene_dataset

    _check_args(args)
    totals = {"objects": 0, "annotations": 0}

    with tqdm(total=args.n, desc="scenes", unit="scene", file=sys.stderr, dynamic_ncols=True) as bar:

        def advance(_i: int, scene) -> None:
            totals["objects"] += len(scene.objects())
            totals["annotations"] += len(scene.nodes)
            bar.update(1)

        annotations = write_scene_dataset(args.out, args.n, args.seed, args.size, on_scene=advance)
    summary = (
        f"wrote {args.n} scenes ({totals['objects']} objects, {totals['annotations']} annotations) "
        f"to {storage.join(args.out, 'images')} and {annotations}"
    )
    if args.photos:
        photos_dir = storage.join(args.out, "photos")
        photos = write_sample_photos(photos_dir)
        summary += f"; {len(photos)} sample photos to {photos_dir}"
    print(summary)
    return 0
