"""SA-1B -> unsamv2 COCO evaluation format (interactive and whole-image).

Expected layout (one extracted ``sa_XXXXXX.tar``)::

    SRC/sa_<id>.jpg      images
    SRC/sa_<id>.json     {"image": {...}, "annotations": [{"segmentation": RLE, ...}, ...]}

``--max-masks N`` keeps a seeded random subset of N masks per image (SA-1B has ~100 per image).

Usage: python scripts/convert/sa1b.py /data/sa1b/sa_000000 runs/datasets/sa1b --max-images 1000
"""

import _cli

from unsamv2.eval.convert_sources import convert_sa1b


def main(args):
    return convert_sa1b(args.src, args.out, mode=args.mode, max_images=args.max_images,
                        max_masks=args.max_masks, seed=args.seed)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--max-masks", type=int, default=None, help="masks kept per image (random, seeded)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mask subset")
    raise SystemExit(_cli.run(main, p))
