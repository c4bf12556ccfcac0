"""DAVIS (the 345-frame interactive subset) -> unsamv2 COCO evaluation format.

Expected layout (the interactive-segmentation release used by RITM / SimpleClick / GraCo)::

    SRC/img/<name>.jpg     frames
    SRC/gt/<name>.png      masks: any non-zero pixel is the object

Usage: python scripts/convert/davis.py /data/DAVIS runs/datasets/davis
"""

from pathlib import Path

import _cli

from unsamv2.eval.convert import convert_paired_folders, nonzero_mask


def main(args):
    src = Path(args.src)
    return convert_paired_folders(src / "img", src / "gt", args.out, decode=nonzero_mask,
                                  description="DAVIS", mode=args.mode, max_images=args.max_images)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main, _cli.parser(__doc__)))
