"""PartImageNet -> unsamv2 COCO evaluation format (a *part* dataset: target IoU 0.85).

Expected layout (the official release, COCO-format part annotations)::

    SRC/annotations/<split>/<split>.json   or   SRC/annotations/<split>.json
    SRC/images/<split>/<file_name>         images (file_name as in the JSON)

Every part annotation becomes one object (its part category kept as ``source_category``).

Usage: python scripts/convert/partimagenet.py /data/PartImageNet runs/datasets/partimagenet --split val
"""

from pathlib import Path

import _cli

from unsamv2.errors import InputError
from unsamv2.eval.convert import convert_coco_json


def main(args):
    src = Path(args.src)
    candidates = [src / "annotations" / args.split / f"{args.split}.json", src / "annotations" / f"{args.split}.json"]
    found = [c for c in candidates if c.is_file()]
    if not found:
        raise InputError(f"no annotation file at {candidates[0]} or {candidates[1]}; check the layout.")
    return convert_coco_json(found[0], src / "images" / args.split, args.out, kind="part",
                             description=f"PartImageNet {args.split}", mode=args.mode, max_images=args.max_images)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--split", default="val", help="split (default: val)")
    raise SystemExit(_cli.run(main, p))
