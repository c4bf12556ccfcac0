"""ADE20K (instance annotations of the SceneParsing release) -> unsamv2 COCO format (AR).

Expected layout (ADEChallengeData2016 plus its instance-level annotations)::

    SRC/images/validation/ADE_val_<id>.jpg
    SRC/annotations_instance/validation/ADE_val_<id>.png   R = category id, G = instance id

Every (category, instance) pair with instance id > 0 is one object.

Usage: python scripts/convert/ade20k.py /data/ADEChallengeData2016 runs/datasets/ade20k
"""

from pathlib import Path

import _cli

from unsamv2.eval.convert import CocoBuilder, image_size, place_image
from unsamv2.eval.convert_sources import ade20k_instances


def main(args):
    src = Path(args.src)
    builder = CocoBuilder(description=f"ADE20K {args.split}", source=str(src))
    pngs = sorted((src / "annotations_instance" / args.split).glob("*.png"))[: args.max_images]
    for png in pngs:
        image = src / "images" / args.split / f"{png.stem}.jpg"
        h, w = image_size(image)
        image_id = builder.add_image(place_image(image, args.out, image.name, args.mode), h, w, source_name=png.stem)
        for key, mask in ade20k_instances(png):
            builder.add_mask(image_id, mask, source_category=key // 256)
    builder.write(args.out)
    return builder


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--split", default="validation", help="split folder (default: validation)")
    raise SystemExit(_cli.run(main, p))
