"""SBD (Semantic Boundaries Dataset, instance masks) -> unsamv2 COCO evaluation format.

Expected layout (the ``benchmark_RELEASE/dataset`` folder of the SBD tarball)::

    SRC/img/<name>.jpg       images
    SRC/inst/<name>.mat      GTinst.Segmentation: 0 background, 1..N instances, 255 ignored
    SRC/val.txt              names of the split (``--split``; the standard protocol uses val)

Every instance of every listed image is one object (2,820 images / 6,671 instances for val).

Usage: python scripts/convert/sbd.py /data/SBD/dataset runs/datasets/sbd
"""

from pathlib import Path

import _cli

from unsamv2.data.paths import safe_join
from unsamv2.errors import InputError
from unsamv2.eval.convert import CocoBuilder, image_size, place_image
from unsamv2.eval.convert_sources import sbd_instances


def main(args):
    src = Path(args.src)
    split = src / f"{args.split}.txt"
    if not split.is_file():
        raise InputError(f"{split} does not exist; give the SBD 'dataset' folder and a split that has a list.")
    names = [n.strip() for n in split.read_text().split() if n.strip()][: args.max_images]
    builder = CocoBuilder(description=f"SBD {args.split}", source=str(src))
    for name in names:
        what = f"entry of {split}"  # names come from a file: refuse absolute ones and '..'
        objects, ignore = sbd_instances(safe_join(str(src / "inst"), f"{name}.mat", what=what))
        image = Path(safe_join(str(src / "img"), f"{name}.jpg", what=what))
        h, w = image_size(image)
        image_id = builder.add_image(place_image(image, args.out, f"{name}.jpg", args.mode),
                                     h, w, ignore=ignore, source_name=name)
        for instance_id, mask in objects:
            builder.add_mask(image_id, mask, instance_id=instance_id)
    builder.write(args.out)
    return builder


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--split", default="val", help="split list file name without .txt (default: val)")
    raise SystemExit(_cli.run(main, p))
