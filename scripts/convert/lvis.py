"""LVIS v1 -> unsamv2 COCO evaluation format, class-agnostic (whole-image AR).

Expected layout (LVIS annotations over the COCO 2017 images)::

    SRC/lvis_v1_val.json                     (``--annotations`` to use another file)
    COCO_ROOT/train2017/, COCO_ROOT/val2017/  images; each LVIS image has a ``coco_url`` whose
                                              last two path parts are <split>/<file name>

Usage: python scripts/convert/lvis.py /data/lvis runs/datasets/lvis --coco-root /data/coco
"""

from pathlib import Path

import _cli

from unsamv2.eval.convert import convert_coco_json


def coco_file_name(entry):
    """train2017/000000397133.jpg from the image's coco_url (LVIS has no file_name)."""
    return "/".join(entry["coco_url"].split("/")[-2:])


def main(args):
    src = Path(args.src)
    return convert_coco_json(src / args.annotations, args.coco_root, args.out, description="LVIS v1",
                             mode=args.mode, max_images=args.max_images, file_name_of=coco_file_name)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--coco-root", required=True, help="folder with the COCO train2017/ and val2017/ images")
    p.add_argument("--annotations", default="lvis_v1_val.json", help="annotation file inside SRC")
    raise SystemExit(_cli.run(main, p))
