"""PASCAL-Part -> unsamv2 COCO evaluation format (a *part* dataset: target IoU 0.85).

Expected layout::

    SRC/JPEGImages/<name>.jpg                 PASCAL VOC 2010 images
    SRC/Annotations_Part/<name>.mat           anno.objects[i].parts[j].mask / .part_name
    SRC/<split>.txt  (optional, --split)      names to convert (default: every .mat file)

Every part of every object becomes one object to click on (annotation field ``part`` =
"<class>/<part>"); ``--include-objects`` also adds the whole objects.

Usage: python scripts/convert/pascal_part.py /data/PascalPart runs/datasets/pascal_part
"""

from pathlib import Path

import _cli

from unsamv2.data.paths import safe_join
from unsamv2.eval.convert import CocoBuilder, image_size, place_image
from unsamv2.eval.convert_sources import pascal_part_masks


def main(args):
    src = Path(args.src)
    if args.split:
        names = [n.strip() for n in (src / f"{args.split}.txt").read_text().split() if n.strip()]
    else:
        names = sorted(p.stem for p in (src / "Annotations_Part").glob("*.mat"))
    builder = CocoBuilder(kind="part", description="PASCAL-Part", source=str(src))
    for name in names[: args.max_images]:
        what = f"entry of {args.split}.txt"  # refuse absolute names and '..'
        image = Path(safe_join(str(src / "JPEGImages"), f"{name}.jpg", what=what))
        h, w = image_size(image)
        image_id = builder.add_image(place_image(image, args.out, image.name, args.mode), h, w, source_name=name)
        for label, mask in pascal_part_masks(safe_join(str(src / "Annotations_Part"), f"{name}.mat", what=what),
                                             include_objects=args.include_objects):
            builder.add_mask(image_id, mask, part=label)
    builder.write(args.out)
    return builder


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--split", default=None, help="list file name without .txt (default: all .mat files)")
    p.add_argument("--include-objects", action="store_true", help="also add the whole objects")
    raise SystemExit(_cli.run(main, p))
