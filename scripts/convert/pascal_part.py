"""PASCAL-Part -> unsamv2 COCO evaluation format (a *part* dataset: target IoU 0.85).

Expected layout::

    SRC/JPEGImages/<name>.jpg                 PASCAL VOC 2010 images
    SRC/Annotations_Part/<name>.mat           anno.objects[i].parts[j].mask / .part_name
    SRC/ImageSets/Main/<split>.txt            names of the split (or SRC/<split>.txt)

As the official evaluation: every part of every object of the ``val`` split, then a random 10%
of those parts (seeded by --seed); annotation field ``part`` = "<class>/<part>". ``--fraction
1`` keeps every part, ``--split all`` reads every .mat file, ``--include-objects`` also adds
the whole objects to the pool.

Usage: python scripts/convert/pascal_part.py /data/PascalPart runs/datasets/pascal_part
"""

import _cli

from unsamv2.eval.convert_sources import PASCAL_PART_FRACTION, convert_pascal_part


def main(args):
    return convert_pascal_part(args.src, args.out, split=args.split, fraction=args.fraction, seed=args.seed,
                               include_objects=args.include_objects, mode=args.mode, max_images=args.max_images)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--split", default="val", help="split list name without .txt (default: val; 'all': every .mat)")
    p.add_argument("--fraction", type=float, default=PASCAL_PART_FRACTION,
                   help=f"share of the parts kept, at random (default {PASCAL_PART_FRACTION})")
    p.add_argument("--seed", type=int, default=0, help="seed of the part subset")
    p.add_argument("--include-objects", action="store_true", help="also add the whole objects")
    raise SystemExit(_cli.run(main, p))
