"""PartImageNet -> unsamv2 COCO evaluation format (a *part* dataset: target IoU 0.85).

Expected layout (the official release)::

    SRC/images/<split>/<name>.JPEG         images
    SRC/annotations/<split>/<name>.png     label maps (part ids 0..39, background 40)
    SRC/annotations/<split>.json           COCO-format part annotations (only with --coco-json)

As the official evaluation: one object per image and part label of the PNG label maps (the
label's whole region, background id 40 included, id 0 not). ``--coco-json`` converts the COCO
annotations instead (every part annotation one object, its category kept as
``source_category``).

Usage: python scripts/convert/partimagenet.py /data/PartImageNet runs/datasets/partimagenet --split val
"""

from pathlib import Path

import _cli

from unsamv2.errors import InputError
from unsamv2.eval.convert import convert_coco_json, convert_paired_folders
from unsamv2.eval.convert_sources import partimagenet_parts


def main(args):
    src = Path(args.src)
    if not args.coco_json:
        return convert_paired_folders(src / "images" / args.split, src / "annotations" / args.split, args.out,
                                      decode=partimagenet_parts, kind="part", mask_exts=(".png",),
                                      description=f"PartImageNet {args.split}", mode=args.mode,
                                      max_images=args.max_images)
    candidates = [src / "annotations" / args.split / f"{args.split}.json", src / "annotations" / f"{args.split}.json"]
    found = [c for c in candidates if c.is_file()]
    if not found:
        raise InputError(f"no annotation file at {candidates[0]} or {candidates[1]}; check the layout.")
    return convert_coco_json(found[0], src / "images" / args.split, args.out, kind="part",
                             description=f"PartImageNet {args.split}", mode=args.mode, max_images=args.max_images)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--split", default="val", help="split (default: val)")
    p.add_argument("--coco-json", action="store_true", help="convert the COCO JSON instead of the PNG label maps")
    raise SystemExit(_cli.run(main, p))
