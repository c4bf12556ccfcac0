"""Does a pretrained SAM-2 base follow the click? The diagnostics behind BENCHMARKS.md, "What made
the base follow the click", for any number of base checkpoints (official ``{"model": ...}`` layout,
``base`` config; default: the shipped base).

Per checkpoint, on held-out procedural scenes (seed 1000, 256 px):

- ``embed_std``: standard deviation of the image embedding of scene 0 (the decoder's keys), to
  compare with the prompt encoder's positional encoding (``pe_std``, ~0.71);
- ``click_dependence``: the first click's low-res multimask logits for 5 click positions on scene
  0, their standard deviation over the clicks against their standard deviation over the pixels;
- ``pairwise_slot_iou``: :func:`unsamv2.train.probe.click_following` on 4 scenes (~1: the masks
  ignore the click);
- with ``--probe-scenes N``: SAM-2's one-click IoU on N scenes
  (:func:`unsamv2.train.probe.sam2_first_click_probe`: single, best of 3, chosen by predicted IoU).

Run: ``.venv/bin/python benchmarks/bench_click_following.py [CHECKPOINT ...] [--probe-scenes 16]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

CLICKS = ((16, 63), (7, 15), (36, 38), (66, 27), (100, 100))  # model-input pixels (x, y), 128-px input


def diagnose(checkpoint: str | None, probe_scenes: int) -> dict:
    """The diagnostics of one checkpoint (module docstring)."""
    import torch

    from unsamv2.eval.baselines import Sam2Baseline
    from unsamv2.model.build import build_sam2
    from unsamv2.model.network import encode_sam2_image
    from unsamv2.scenes import iter_scenes
    from unsamv2.train.probe import click_following, sam2_first_click_probe
    from unsamv2.train.sam2_loop import decode_sam2

    model = build_sam2("base", checkpoint=checkpoint).eval()
    baseline = Sam2Baseline.from_model(model)
    scene = next(iter(iter_scenes(1, 1000, 256)))
    with torch.inference_mode():
        features = encode_sam2_image(model, baseline.predictor._transforms(scene.image)[None])
        logits = torch.stack([decode_sam2(model, features, torch.tensor([[xy]], dtype=torch.float32),
                                          torch.ones(1, 1, dtype=torch.int32), None, True)[0][0] for xy in CLICKS])
        row = {"checkpoint": checkpoint or "shipped", "embed_std": float(features.image_embed.std()),
               "pe_std": float(model.sam_prompt_encoder.get_dense_pe().std()),
               "click_dependence": [float(logits.std(0).mean()), float(logits.std((2, 3)).mean())],
               "pairwise_slot_iou": click_following(baseline)}
        if probe_scenes:
            row["probe"] = sam2_first_click_probe(baseline, scenes=probe_scenes, seed=1000).results
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", help="sam2.pt files (default: the shipped base)")
    parser.add_argument("--probe-scenes", type=int, default=0, help="also the one-click probe on this many scenes")
    args = parser.parse_args()
    for checkpoint in args.checkpoints or [None]:
        print(json.dumps(diagnose(checkpoint, args.probe_scenes)), flush=True)


if __name__ == "__main__":
    main()
