"""EntitySeg -> unsamv2 COCO evaluation format, class-agnostic (whole-image AR).

Expected layout (the official release; COCO-format JSON with RLE or polygon entities)::

    SRC/entityseg_val_lr.json   (``--annotations`` to pick another file, e.g. the -hr version)
    SRC/images/<file_name>      (``--image-root`` if the images live elsewhere)

Usage: python scripts/convert/entityseg.py /data/entityseg runs/datasets/entityseg
"""

from pathlib import Path

import _cli

from unsamv2.eval.convert import convert_coco_json


def main(args):
    src = Path(args.src)
    root = Path(args.image_root) if args.image_root else src / "images"
    return convert_coco_json(src / args.annotations, root, args.out, description="EntitySeg",
                             mode=args.mode, max_images=args.max_images)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--annotations", default="entityseg_val_lr.json", help="annotation file inside SRC")
    p.add_argument("--image-root", default=None, help="folder the file_name entries are relative to")
    raise SystemExit(_cli.run(main, p))
