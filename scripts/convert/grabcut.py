"""GrabCut (50 images) -> unsamv2 COCO evaluation format.

Expected layout (the interactive-segmentation release used by RITM / SimpleClick / GraCo)::

    SRC/data_GT/<name>.jpg|.bmp     images
    SRC/boundary_GT/<name>.bmp      masks: 255 object, 128 unknown band (ignored), 0 background

Usage: python scripts/convert/grabcut.py /data/GrabCut runs/datasets/grabcut
"""

from pathlib import Path

import _cli

from unsamv2.eval.convert import convert_paired_folders, threshold_mask


def main(args):
    src = Path(args.src)
    return convert_paired_folders(src / "data_GT", src / "boundary_GT", args.out, decode=threshold_mask,
                                  description="GrabCut", mode=args.mode, max_images=args.max_images)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main, _cli.parser(__doc__)))
