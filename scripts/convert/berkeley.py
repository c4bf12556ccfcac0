"""Berkeley (100 instances of 96 images) -> unsamv2 COCO evaluation format.

Expected layout (the interactive-segmentation release used by RITM / SimpleClick / GraCo)::

    SRC/images/<name>.jpg     images
    SRC/masks/<name>.png      masks: > 128 object, 128 ignored, else background

Usage: python scripts/convert/berkeley.py /data/Berkeley runs/datasets/berkeley
"""

from pathlib import Path

import _cli

from unsamv2.eval.convert import convert_paired_folders, threshold_mask


def main(args):
    src = Path(args.src)
    return convert_paired_folders(src / "images", src / "masks", args.out, decode=threshold_mask,
                                  description="Berkeley", mode=args.mode, max_images=args.max_images)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main, _cli.parser(__doc__)))
