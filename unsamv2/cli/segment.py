"""``unsamv2 segment`` and ``unsamv2 segment-video``: masks at chosen granularities.

    unsamv2 segment IMAGE --point X,Y [--point X,Y] [--negative X,Y] --granularity 0.3 0.6 1.0 --out DIR
    unsamv2 segment IMAGE --whole --granularity 0.5 --out DIR
    unsamv2 segment-video FRAMES_DIR --point X,Y --granularity 0.3 --out DIR

With no model flags the shipped UnSAMv2 runs: the pretrained base (``--config base``, a small
SAM-2 trained on procedural scenes) with the shipped adapter — it segments scenes like the
procedural ones, not natural photographs. For real images give ``--config sam2.1_hiera_s``
(or _t/_b+/_l) with ``--checkpoint`` (a SAM-2.1 or UnSAMv2 checkpoint) and/or ``--adapter``.
``--config tiny`` without weights runs a random tiny model: a smoke test, not a segmentation.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DEFAULT_CONFIG = "base"


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y pixels like 120,80, got {text!r}") from None
    return x, y


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (default: the shipped base with the shipped adapter)")
    group.add_argument("--config", default=None,
                       help="'base' (the shipped base, default), a SAM-2 config name (sam2.1_hiera_t/_s/_b+/_l) "
                            "with --checkpoint, a YAML path, or 'tiny' (random-weight smoke test)")
    group.add_argument("--checkpoint", default=None, help="SAM-2.1 or UnSAMv2 checkpoint (.pt, local or s3://)")
    group.add_argument("--adapter", default=None, help="UnSAMv2 adapter (.safetensors, local or s3://)")
    group.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    group.add_argument("--mask-threshold", type=float, default=-1.0,
                       help="logit threshold for foreground (default -1.0, as the reference)")


def _click_arguments(parser: argparse.ArgumentParser, granularity_help: str) -> None:
    parser.add_argument("--point", type=_point, action="append", default=[], metavar="X,Y",
                        help="positive click in pixels (repeatable)")
    parser.add_argument("--negative", type=_point, action="append", default=[], metavar="X,Y",
                        help="negative click in pixels (repeatable)")
    parser.add_argument("--granularity", type=float, nargs="+", required=True, metavar="G",
                        help=granularity_help)
    parser.add_argument("--out", required=True, help="output folder (local or s3://)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="segment an image at granularities: clicked object or whole image",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", help="image file (local or s3://)")
    _click_arguments(p, "granularity values in [0, 1]: 0.1 = small part ... 1.0 = whole object")
    p.add_argument("--whole", action="store_true", help="segment everything (grid of clicks) instead of clicks")
    p.add_argument("--points-per-side", type=int, default=32, help="--whole: grid size (reference: 64)")
    p.add_argument("--points-per-batch", type=int, default=64, help="--whole: clicks per decoder call")
    p.add_argument("--m2m", action="store_true",
                   help="--whole: the mask-to-mask second pass of the official evaluation (twice the decoder work)")
    p.add_argument("--pred-iou-thresh", type=float, default=None,
                   help="--whole: keep masks whose predicted IoU exceeds this (default: the official 0.65 "
                        "below g 0.5, else 0.5; 0 keeps all)")
    p.add_argument("--stability-thresh", type=float, default=0.7,
                   help="--whole: keep masks whose stability score is at least this (official 0.7; 0 keeps all)")
    _model_arguments(p)
    p.set_defaults(func=_segment)

    v = sub.add_parser("segment-video", help="propagate a clicked object through video frames at granularities",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("frames", help="folder of frames (jpg/png, natural name order; local or s3://)")
    _click_arguments(v, "granularity values in [0, 1]; one propagation per value")
    v.add_argument("--frame", type=int, default=0, help="index of the clicked frame (default 0)")
    _model_arguments(v)
    v.set_defaults(func=_segment_video)


def load_model(args: argparse.Namespace) -> Any:
    """Build the model the arguments ask for; refuse a random non-tiny model."""
    from unsamv2.errors import InputError
    from unsamv2.model import build_model
    from unsamv2.model.build import SHIPPED_ADAPTER, shipped_weights

    config = args.config or DEFAULT_CONFIG
    adapter = args.adapter
    if args.checkpoint is None and config not in ("tiny", "base"):
        raise InputError(f"--config {config} needs weights: give --checkpoint (a SAM-2.1 or UnSAMv2 "
                         "checkpoint) and optionally --adapter; or use the shipped --config base.")
    if config == "base" and args.checkpoint is None and adapter is None:
        adapter = shipped_weights(SHIPPED_ADAPTER)
    if config == "tiny" and args.checkpoint is None and adapter is None:
        print("unsamv2: warning: --config tiny with random weights — a smoke test of the pipeline, "
              "the masks mean nothing; give --checkpoint/--adapter for real use.", file=sys.stderr)
    return build_model(config, checkpoint=args.checkpoint, adapter=adapter, device=args.device)


def _clicks(args: argparse.Namespace) -> tuple[Any, Any]:
    import numpy as np

    from unsamv2.errors import InputError

    if not args.point:
        raise InputError("give at least one positive click with --point X,Y.")
    points = np.array(args.point + args.negative, dtype=np.float32)
    labels = np.array([1] * len(args.point) + [0] * len(args.negative), dtype=np.int32)
    return points, labels


def _segment(args: argparse.Namespace) -> int:
    from unsamv2.data import storage
    from unsamv2.model.predictor import as_granularities
    from unsamv2.model.video import read_frame

    gs = as_granularities(args.granularity)
    image = read_frame(args.image)
    model = load_model(args)
    storage.makedirs(args.out)
    if args.whole:
        written = _write_whole(args, model, image, gs)
    else:
        written = _write_clicked(args, model, image, gs)
    print(f"wrote {len(written)} files to {args.out}: {', '.join(written)}")
    return 0


def _write_clicked(args: argparse.Namespace, model: Any, image: Any, gs: Any) -> list[str]:
    from unsamv2.data import storage
    from unsamv2.model import UnSAMv2Predictor
    from unsamv2.model.overlay import draw_points, overlay_masks, png_bytes, strip, titled

    points, labels = _clicks(args)
    predictor = UnSAMv2Predictor(model, mask_threshold=args.mask_threshold)
    predictor.set_image(image)
    masks, ious, _ = predictor.predict(points, labels, gs)
    written, panels, summary = [], [], []
    for g, mask, iou in zip(gs, masks, ious, strict=True):
        name = f"g{g:.2f}"
        picture = draw_points(overlay_masks(image, [mask]), points, labels)
        storage.write_bytes(storage.join(args.out, f"mask_{name}.png"), png_bytes(mask))
        storage.write_bytes(storage.join(args.out, f"overlay_{name}.png"), png_bytes(picture))
        written += [f"mask_{name}.png", f"overlay_{name}.png"]
        panels.append(titled(picture, f"g = {g:.2f}   IoU {iou:.2f}"))
        summary.append({"granularity": float(g), "predicted_iou": float(iou),
                        "area": int(mask.sum()), "mask": f"mask_{name}.png"})
    storage.write_bytes(storage.join(args.out, "strip.png"), png_bytes(strip(panels)))
    storage.write_text(storage.join(args.out, "predictions.json"), json.dumps(
        {"image": args.image, "points": points.tolist(), "labels": labels.tolist(),
         "masks": summary}, indent=1))
    return [*written, "strip.png", "predictions.json"]


def _write_whole(args: argparse.Namespace, model: Any, image: Any, gs: Any) -> list[str]:
    from tqdm import tqdm

    from unsamv2.data import storage
    from unsamv2.data.rle import decode_rles
    from unsamv2.model import UnSAMv2MaskGenerator
    from unsamv2.model.overlay import overlay_masks, png_bytes, strip, titled

    generator = UnSAMv2MaskGenerator(model, points_per_side=args.points_per_side,
                                     points_per_batch=args.points_per_batch,
                                     mask_threshold=args.mask_threshold, use_m2m=args.m2m,
                                     pred_iou_thresh=args.pred_iou_thresh,
                                     stability_score_thresh=args.stability_thresh)
    generator.predictor.set_image(image)
    height, width = image.shape[:2]
    written, panels, empty = [], [], []
    for g in tqdm(gs, desc="granularities", file=sys.stderr):
        records = generator.generate_for_set_image(float(g))
        name = f"g{g:.2f}"
        masks = decode_rles([r["rle"] for r in records], height, width)  # (0, H, W) without records
        # largest first, so small masks stay visible on top
        order = sorted(range(len(records)), key=lambda i: -records[i]["area"])
        picture = overlay_masks(image, [masks[i] for i in order])
        storage.write_bytes(storage.join(args.out, f"whole_{name}.png"), png_bytes(picture))
        for k, mask in enumerate(masks):  # masks_<g>/<k>.png: record k of masks_<g>.json
            storage.write_bytes(storage.join(args.out, f"masks_{name}", f"{k:04d}.png"), png_bytes(mask))
        storage.write_text(storage.join(args.out, f"masks_{name}.json"), json.dumps(
            [{**{k: v for k, v in r.items() if k != "rle"}, "mask": f"masks_{name}/{i:04d}.png"}
             for i, r in enumerate(records)]))
        written += [f"whole_{name}.png", f"masks_{name}.json", f"masks_{name}/ ({len(records)} PNG masks)"]
        panels.append(titled(picture, f"g = {g:.2f}   {len(records)} masks"))
        if not records:
            empty.append(f"{g:.2f}")
    if empty:
        print(f"no mask passed the filters at g = {', '.join(empty)} (predicted IoU, stability >= "
              f"{args.stability_thresh:g}); a model whose IoU head predicts low (the shipped base does) keeps "
              "more with --pred-iou-thresh 0 --stability-thresh 0.", file=sys.stderr)
    if len(panels) > 1:
        storage.write_bytes(storage.join(args.out, "strip.png"), png_bytes(strip(panels)))
        written.append("strip.png")
    return written


def _segment_video(args: argparse.Namespace) -> int:
    import numpy as np

    from unsamv2.data import storage
    from unsamv2.model import UnSAMv2VideoPredictor
    from unsamv2.model.overlay import draw_points, overlay_masks, png_bytes, strip, titled
    from unsamv2.model.predictor import as_granularities
    from unsamv2.model.video import list_frames, read_frame

    gs = as_granularities(args.granularity)
    frames = list_frames(args.frames)
    points, labels = _clicks(args)
    model = load_model(args)
    video = UnSAMv2VideoPredictor(model, mask_threshold=args.mask_threshold)
    shown = set(np.linspace(0, len(frames) - 1, min(6, len(frames))).round().astype(int).tolist())
    written = 0
    for g in gs:
        folder = storage.join(args.out, f"g{g:.2f}")
        storage.makedirs(folder)
        panels = {}
        for index, mask in video.propagate(frames, points, labels, float(g), frame_index=args.frame):
            storage.write_bytes(storage.join(folder, f"{index:05d}.png"), png_bytes(mask))
            written += 1
            if index in shown:
                picture = overlay_masks(read_frame(frames[index]), [mask])
                if index == args.frame:
                    picture = draw_points(picture, points, labels)
                panels[index] = titled(picture, f"frame {index}  g = {g:.2f}")
        storage.write_bytes(storage.join(args.out, f"overlay_g{g:.2f}.png"),
                            png_bytes(strip([panels[i] for i in sorted(panels)])))
        written += 1
    print(f"wrote {written} files to {args.out}: per g a folder g<G>/ of frame masks "
          f"(<frame>.png) and an overlay strip overlay_g<G>.png")
    return 0
