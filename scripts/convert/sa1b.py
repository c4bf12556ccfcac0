"""SA-1B -> unsamv2 COCO evaluation format (interactive and whole-image).

Expected layout (one extracted ``sa_XXXXXX.tar``)::

    SRC/sa_<id>.jpg      images
    SRC/sa_<id>.json     {"image": {...}, "annotations": [{"segmentation": RLE, ...}, ...]}

The official evaluation's sample by default: the first 1000 images (by name), at most 5 random
pairwise non-overlapping masks per image (seeded by --seed and the image's position).
``--max-images 0`` converts every image; ``--max-masks 0`` keeps every mask; ``--allow-overlap``
draws the masks without the non-overlap rule.

Usage: python scripts/convert/sa1b.py /data/sa1b/sa_000000 runs/datasets/sa1b
"""

import _cli

from unsamv2.eval.convert_sources import SA1B_IMAGES, SA1B_MASKS, convert_sa1b


def main(args):
    return convert_sa1b(args.src, args.out, mode=args.mode, max_images=args.max_images or None,
                        max_masks=args.max_masks or None, non_overlapping=not args.allow_overlap, seed=args.seed)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.set_defaults(max_images=SA1B_IMAGES)
    p.add_argument("--max-masks", type=int, default=SA1B_MASKS,
                   help=f"masks kept per image (random, seeded; default {SA1B_MASKS}; 0 = all)")
    p.add_argument("--allow-overlap", action="store_true", help="the kept masks may overlap each other")
    p.add_argument("--seed", type=int, default=0, help="seed of the mask subset")
    raise SystemExit(_cli.run(main, p))
