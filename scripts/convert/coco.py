"""COCO (instances) -> unsamv2 COCO evaluation format, class-agnostic (whole-image AR).

Expected layout (the official release)::

    SRC/annotations/instances_val2017.json
    SRC/val2017/<file_name>

Crowd annotations stay crowd regions (ignored by COCOeval, and ignore pixels for clicks).

Usage: python scripts/convert/coco.py /data/coco runs/datasets/coco
"""

from pathlib import Path

import _cli

from unsamv2.eval.convert import convert_coco_json


def main(args):
    src = Path(args.src)
    return convert_coco_json(src / "annotations" / f"instances_{args.split}.json", src / args.split, args.out,
                             description=f"COCO {args.split}", mode=args.mode, max_images=args.max_images)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--split", default="val2017", help="split (default: val2017)")
    raise SystemExit(_cli.run(main, p))
