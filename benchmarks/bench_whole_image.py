"""Whole-image masks side by side: the official configuration vs ours (issue 12, item 2).

Both sides run the same checkpoint on the same image, each in its own Python process (one
thread by default), and report **process CPU seconds per image** (every g of the image):

- **official**: SAM-2's ``SAM2AutomaticMaskGenerator`` from the release's SAM-2 fork, built as
  ``evaluation/whole_image/coco_annotator.py`` builds it (grid, 128 points per batch, mask
  threshold -1, stability offset 0.7, box NMS 0.7, no crops, ``use_m2m=True``) and driven as its
  ``_annotate_image`` drives it: for each g, set the thresholds (predicted IoU 0.65 below g 0.5,
  else 0.5; stability 0.7), ``generate(image, gra=g)`` (which embeds the image again), then
  encode each binary mask with pycocotools. The release is never a dependency of this project:
  give the path of a checkout with ``--official`` (its ``sam2/`` folder is put first on that
  process's ``PYTHONPATH``; OpenCV, which the fork imports but never calls here, is replaced by
  an empty module when absent). Without it that side is skipped, with a message.
- **ours**: ``UnSAMv2MaskGenerator(...).generate(image, all g)``: one embedding, every g's
  clicks through the inference decoder together, records with RLE.

Two models (``--model``):

- ``fixture`` (default): the tiny official-layout checkpoint of
  ``../shared/fixtures/official-unsamv2-tiny`` (random weights, 1024-px input, so the decoder
  works over 64x64 image tokens as Hiera-S does). Its masks hardly depend on the click and its
  logits stay within about +-0.5, so with the official thresholds every g gives one whole-image
  mask. ``--preset relaxed`` (mask threshold 0.2, stability offset 0.05, stability 0.2, predicted
  IoU 0.5, box NMS 0.9) keeps many distinct masks, so that the match check means something;
  ``--nms 1.0`` keeps one mask per click.
- ``base``: the shipped pretrained base with the shipped adapter (a model that produces real
  masks), written once in the release's checkpoint layout, on a held-out procedural scene
  (master seed 1000, scene 0, 256 px) unless ``--image`` is given. Its decoder is 128 wide and
  the release hardcodes 256 in two places (``MaskDecoderGra`` passes ``transformer_dim=256`` to
  SAM-2's decoder, ``FourierGranularityMLP`` defaults ``decoder_dim=256``); the official side
  sets both to the model's width, and nothing else of the release changes (``_release_width``).
  Its predicted IoU stays below the official filters (no mask passes them on this scene), so
  ``--preset unfiltered`` (the official settings with both filters at 0) gives masks to match.

Masks are matched per g: each official mask to our best one and vice versa (IoU > 0.9).
``--split`` also reports where our CPU time goes (decoder passes, upscaling, the rest);
``--bf16`` runs our side under bf16 autocast, to measure what reduced precision would give.

    .venv/bin/python benchmarks/bench_whole_image.py --official /path/to/UnSAMv2 --grid 16 32 \\
        --granularities 0.3 0.7 --preset relaxed --json runs/bench_whole_image.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "official-unsamv2-tiny"
PRESETS: dict[str, dict[str, Any]] = {
    # the official evaluation's thresholds; pred_iou None = 0.65 below g 0.5, else 0.5
    "official": {"pred_iou": None, "stability": 0.7, "offset": 0.7, "mask_threshold": -1.0, "nms": 0.7},
    "relaxed": {"pred_iou": 0.5, "stability": 0.2, "offset": 0.05, "mask_threshold": 0.2, "nms": 0.9},
    # the official settings with the predicted-IoU and stability filters off (for the base, whose
    # IoU head keeps no mask above the official filters, so that there are masks to match)
    "unfiltered": {"pred_iou": 0.0, "stability": 0.0, "offset": 0.7, "mask_threshold": -1.0, "nms": 0.7},
}
RELEASE_ADAPTER_KEYS = ("temperature", "fourier_dim", "lora_rank")  # from the release's model config


def _load_image(path: str) -> Any:
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return np.array(img.convert("RGB"))


def _thresholds(spec: dict[str, Any], g: float) -> tuple[float, float]:
    """(predicted IoU, stability) thresholds at g: the official per-g rule or the fixed ones."""
    if spec["pred_iou"] is None:
        return (0.65 if g < 0.5 else 0.5), 0.7
    return spec["pred_iou"], spec["stability"]


def _release_width(width: int) -> None:
    """Set the release's two hardcoded decoder widths (256) to ``width``; a no-op at 256."""
    import functools

    from sam2.modeling.sam import gra_mask_decoder, prompt_encoder

    if width == 256:
        return
    decoder_init = gra_mask_decoder.MaskDecoder.__init__

    def init(self: Any, *, transformer_dim: int, **kwargs: Any) -> None:
        decoder_init(self, transformer_dim=width, **kwargs)

    gra_mask_decoder.MaskDecoder.__init__ = init
    prompt_encoder.FourierGranularityMLP = functools.partial(prompt_encoder.FourierGranularityMLP,
                                                             decoder_dim=width)


def _official_model(spec: dict[str, Any]) -> Any:
    """The release's fork builds the model the way its ``build_sam2`` does."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from sam2 import build_sam

    cfg = OmegaConf.load(spec["config"])
    _release_width(int(cfg.model.image_encoder.neck.d_model))
    release = OmegaConf.load(Path(spec["official"]) / "sam2" / "sam2" / "configs" / "unsamv2_small.yaml")
    for key in RELEASE_ADAPTER_KEYS:
        cfg.model[key] = release.model[key]
    cfg.model.sam_mask_decoder_extra_args = {  # build_sam2's apply_postprocessing overrides
        "dynamic_multimask_via_stability": True, "dynamic_multimask_stability_delta": 0.05,
        "dynamic_multimask_stability_thresh": 0.98}
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model, _recursive_=True)
    build_sam._load_checkpoint(model, spec["checkpoint"])
    build_sam._setup_lora_after_loading(model)
    return model.eval()


def _official_generator(model: Any, spec: dict[str, Any], grid: int) -> Any:
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    return SAM2AutomaticMaskGenerator(
        model=model, points_per_side=grid, points_per_batch=spec["batch"],
        mask_threshold=spec["mask_threshold"], pred_iou_thresh=0.7, stability_score_thresh=0.9,
        stability_score_offset=spec["offset"], crop_n_layers=0, box_nms_thresh=spec["nms"],
        crop_n_points_downscale_factor=1, min_mask_region_area=0, use_m2m=spec["m2m"])


def _official_image(generator: Any, image: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """coco_annotator's per-image loop: thresholds per g, generate, encode each mask."""
    import numpy as np
    from pycocotools import mask as mask_utils

    found = []
    for g in spec["gs"]:
        generator.pred_iou_thresh, generator.stability_score_thresh = _thresholds(spec, g)
        for m in generator.generate(image, gra=g):
            rle = mask_utils.encode(np.asfortranarray(m["segmentation"].astype(np.uint8)))
            if mask_utils.area(rle) >= 1:
                found.append({"g": g, "counts": rle["counts"].decode("ascii"), "iou": m["predicted_iou"]})
    return found


def worker_official(spec: dict[str, Any]) -> dict[str, Any]:
    """The official side (runs with the release's fork first on the path)."""
    try:
        import cv2  # noqa: F401
    except ImportError:  # imported at module level by the fork, only used by code not run here
        sys.modules["cv2"] = types.ModuleType("cv2")
    import torch

    torch.set_num_threads(spec["threads"])
    image = _load_image(spec["image"])
    model = _official_model(spec)
    with torch.no_grad():
        _official_image(_official_generator(model, spec, 2), image, dict(spec, gs=spec["gs"][:1]))  # warm-up
        generator = _official_generator(model, spec, spec["grid"])
        cpu, wall = time.process_time(), time.perf_counter()
        masks = _official_image(generator, image, spec)
        return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall, "masks": masks}


def _ours_generator(model: Any, spec: dict[str, Any], grid: int) -> Any:
    from unsamv2.model import UnSAMv2MaskGenerator

    fixed = spec["pred_iou"] is not None
    return UnSAMv2MaskGenerator(
        model, points_per_side=grid, points_per_batch=spec["batch"],
        pred_iou_thresh=spec["pred_iou"], stability_score_thresh=spec["stability"] if fixed else 0.7,
        stability_score_offset=spec["offset"], box_nms_thresh=spec["nms"],
        mask_threshold=spec["mask_threshold"], use_m2m=spec["m2m"])


def _time_calls(split: dict[str, float]) -> None:
    """Add the CPU seconds of our decoder passes and upscaling (low-res logits + bilinear) to
    ``split`` while they run (``--split``)."""
    from unsamv2.model import decoder, generator

    def timed(function: Any, name: str) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                split[name] = split.get(name, 0.0) + time.process_time() - start
        return run

    decoder.FastDecoder.decode = timed(decoder.FastDecoder.decode, "decode")
    decoder.FastDecoder.low_res_logits = timed(decoder.FastDecoder.low_res_logits, "upscale")
    generator.upscale_logits = timed(generator.upscale_logits, "upscale")


def worker_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """Our side: one generate call for the image at every g (under bf16 autocast with ``--bf16``)."""
    import contextlib

    sys.path.insert(0, str(ROOT))
    import torch

    from unsamv2.model import build_model

    torch.set_num_threads(spec["threads"])
    image = _load_image(spec["image"])
    model = build_model(spec["config"], checkpoint=spec["checkpoint"])
    precision = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if spec["bf16"] else contextlib.nullcontext
    with precision():
        _ours_generator(model, spec, 2).generate(image, spec["gs"][:1])  # warm-up
    generator, split = _ours_generator(model, spec, spec["grid"]), {}
    if spec["split"]:
        _time_calls(split)
    cpu, wall = time.process_time(), time.perf_counter()
    with precision():
        records = generator.generate(image, spec["gs"])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    masks = [{"g": r["granularity"], "counts": r["segmentation"]["counts"], "iou": r["predicted_iou"]}
             for r in records]
    return {"cpu_s": cpu, "wall_s": wall, "masks": masks, "split": split}


def run_side(side: str, spec: dict[str, Any], official: str | None) -> dict[str, Any]:
    """Run one side in a fresh process (its own sam2 on the path, ``spec['threads']`` threads)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]))
    env.pop("PYTHONPATH", None)
    if side == "official":
        env["PYTHONPATH"] = str(Path(official) / "sam2")
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        subprocess.run([sys.executable, __file__, "--worker", side, str(spec_path), str(out_path)],
                       env=env, check=True, cwd=tmp)
        return json.loads(out_path.read_text())


def _pairwise_iou(a: Any, b: Any, chunk: int = 512) -> Any:
    """(len(a), len(b)) IoU of two (N, H, W) bool stacks, intersections as float32 matrix products
    of 0/1 rows in chunks (exact: the counts stay far below 2^24)."""
    import numpy as np
    import torch

    flat_a = torch.from_numpy(a.reshape(len(a), -1))
    flat_b = torch.from_numpy(b.reshape(len(b), -1))
    inter = np.empty((len(a), len(b)), dtype=np.float64)
    for i in range(0, len(a), chunk):
        rows = flat_a[i:i + chunk].float()
        for j in range(0, len(b), chunk):
            inter[i:i + chunk, j:j + chunk] = (rows @ flat_b[j:j + chunk].float().T).double().numpy()
    areas_a, areas_b = a.reshape(len(a), -1).sum(1), b.reshape(len(b), -1).sum(1)
    union = areas_a[:, None] + areas_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def match(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], height: int, width: int) -> dict[str, Any]:
    """Per g: masks of each side with a partner of IoU > 0.9 on the other side, identical ones, and
    the lowest best-partner IoU of any mask."""
    sys.path.insert(0, str(ROOT))
    from unsamv2.data.rle import decode_rles

    out = {"ours": len(ours), "official": len(theirs), "ours_matched": 0, "official_matched": 0, "identical": 0,
           "min_best_iou": 1.0 if ours or theirs else None}
    for g in sorted({m["g"] for m in ours + theirs}):
        a, b = [m for m in ours if m["g"] == g], [m for m in theirs if m["g"] == g]
        if not a or not b:
            out["min_best_iou"] = 0.0
            continue
        iou = _pairwise_iou(decode_rles([m["counts"].encode() for m in a], height, width),
                            decode_rles([m["counts"].encode() for m in b], height, width))
        out["ours_matched"] += int((iou.max(1) > 0.9).sum())
        out["official_matched"] += int((iou.max(0) > 0.9).sum())
        out["identical"] += len({m["counts"] for m in a} & {m["counts"] for m in b})
        out["min_best_iou"] = min(out["min_best_iou"], float(iou.max(1).min()), float(iou.max(0).min()))
    out["match_rate"] = min(out["ours_matched"] / max(out["ours"], 1),
                            out["official_matched"] / max(out["official"], 1))
    return out


def base_model(out: Path) -> tuple[str, str, str]:
    """The shipped base + shipped adapter in the release's layout, and a held-out scene (256 px,
    master seed 1000, scene 0), written under ``out`` once; returns (config, checkpoint, image)."""
    sys.path.insert(0, str(ROOT))
    import torch
    from PIL import Image

    from unsamv2.model import build_model
    from unsamv2.model.checkpoint import to_official
    from unsamv2.scenes import iter_scenes

    out = out.resolve()  # the workers run in their own folders
    out.mkdir(parents=True, exist_ok=True)
    checkpoint, image = out / "base_shipped_official.pt", out / "scene_1000_0.png"
    if not checkpoint.is_file():
        state = build_model("base", adapter="shipped").state_dict()
        torch.save({"model": to_official(state)}, checkpoint)
    if not image.is_file():
        Image.fromarray(next(iter_scenes(1, 1000, size=256)).image).save(image)
    return str(ROOT / "unsamv2" / "configs" / "base.yaml"), str(checkpoint), str(image)


def _spec(args: argparse.Namespace, grid: int) -> dict[str, Any]:
    spec = dict(PRESETS[args.preset], grid=grid, gs=args.granularities, batch=args.points_per_batch,
                m2m=not args.no_m2m, threads=args.threads, image=str(args.image), bf16=args.bf16, split=args.split,
                config=args.config, checkpoint=args.checkpoint, official=args.official)
    for key in ("pred_iou", "stability", "offset", "mask_threshold", "nms"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    return spec


def bench_grid(args: argparse.Namespace, grid: int, official: str | None) -> dict[str, Any]:
    """One setting: ours, then the official side (if given); CPU seconds, ratio, match."""
    spec = _spec(args, grid)
    row: dict[str, Any] = {"grid": grid, "granularities": spec["gs"], "settings": spec}
    ours = run_side("ours", spec, None)
    row["ours_cpu_s"], row["ours_wall_s"], row["ours_masks"] = ours["cpu_s"], ours["wall_s"], len(ours["masks"])
    print(f"{grid}x{grid}, {len(spec['gs'])} g: ours {ours['cpu_s']:.1f} CPU s, {len(ours['masks'])} masks", flush=True)
    if ours["split"]:
        row["ours_split_s"] = dict(ours["split"], rest=ours["cpu_s"] - sum(ours["split"].values()))
        print("  ours: " + ", ".join(f"{k} {v:.1f} s" for k, v in row["ours_split_s"].items()), flush=True)
    if official is None:
        return row
    theirs = run_side("official", spec, official)
    row["official_cpu_s"], row["official_wall_s"] = theirs["cpu_s"], theirs["wall_s"]
    row["ratio"] = theirs["cpu_s"] / ours["cpu_s"]
    print(f"  official {theirs['cpu_s']:.1f} CPU s, {len(theirs['masks'])} masks: ratio {row['ratio']:.2f}x; "
          "matching the masks ...", flush=True)
    height, width = _load_image(spec["image"]).shape[:2]
    row["match"] = match(ours["masks"], theirs["masks"], height, width)
    print(f"  match {row['match']}", flush=True)
    return row


def _official_path(path: str | None) -> str | None:
    if not path:
        print("official side skipped: give --official PATH (a checkout of the UnSAMv2 release); "
              "timing ours only.", flush=True)
        return None
    if not (Path(path) / "sam2" / "sam2" / "automatic_mask_generator.py").is_file():
        print(f"official side skipped: {path} has no sam2/sam2/automatic_mask_generator.py "
              "(expected a checkout of the UnSAMv2 release); timing ours only.", flush=True)
        return None
    return str(Path(path).resolve())


def _table(rows: list[dict[str, Any]], preset: str) -> str:
    lines = ["| grid | g | thresholds | official CPU s | ours CPU s | ratio | masks (official/ours) | matched (IoU > 0.9) |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        m = r.get("match")
        matched = (f"{m['official_matched']}/{m['official']} official, {m['ours_matched']}/{m['ours']} ours, "
                   f"{m['identical']} identical") if m else "-"
        official = f"{r['official_cpu_s']:.1f}" if "official_cpu_s" in r else "-"
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        masks = f"{m['official']}/{m['ours']}" if m else f"-/{r['ours_masks']}"
        lines.append(f"| {r['grid']}x{r['grid']} | {len(r['granularities'])} | {preset} | {official} | "
                     f"{r['ours_cpu_s']:.1f} | {ratio} | {masks} | {matched} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", help="a checkout of the UnSAMv2 release (skipped when absent)")
    parser.add_argument("--model", choices=("fixture", "base"), default="fixture",
                        help="the fixture's random tiny checkpoint or the shipped base + adapter")
    parser.add_argument("--fixture", type=Path, default=FIXTURE)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_whole_image",
                        help="where --model base writes its checkpoint and scene")
    parser.add_argument("--image", type=Path, default=None, help="default: the fixture's image.png")
    parser.add_argument("--grid", type=int, nargs="+", default=[16])
    parser.add_argument("--granularities", type=float, nargs="+", default=[0.3, 0.7])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="relaxed")
    for key in ("pred_iou", "stability", "offset", "mask_threshold", "nms"):
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, type=float, default=None,
                            help="override the preset's value")
    parser.add_argument("--points-per-batch", type=int, default=128)
    parser.add_argument("--no-m2m", action="store_true", help="both sides without the m2m pass")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true",
                        help="run our side under bf16 autocast (what reduced precision would give; not our default)")
    parser.add_argument("--split", action="store_true",
                        help="also report our CPU seconds in the decoder passes, the upscaling and the rest")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args()
    if args.model == "base":
        args.config, args.checkpoint, image = base_model(args.work)
    else:
        args.config = str(args.fixture / "sam2_tiny.yaml")
        args.checkpoint, image = str(args.fixture / "official_tiny.pt"), str(args.fixture / "image.png")
    args.image = args.image or image
    official = _official_path(args.official)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = [bench_grid(args, grid, official) for grid in args.grid]
    print(f"load average after: {os.getloadavg()[0]:.2f}\n\n{_table(rows, args.preset)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        side, spec_file, out_file = sys.argv[2:]
        worker = worker_official if side == "official" else worker_ours
        Path(out_file).write_text(json.dumps(worker(json.loads(Path(spec_file).read_text()))))
    else:
        main()
