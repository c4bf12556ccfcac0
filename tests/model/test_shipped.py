"""The shipped weights: the pretrained base and its UnSAMv2 adapter load from the package and
segment held-out procedural scenes far better than random weights of the same architecture."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from unsamv2.cli import main
from unsamv2.eval.baselines import Sam2Baseline
from unsamv2.eval.interactive import ClickSession, mask_iou
from unsamv2.model import UnSAMv2Predictor, build_model, build_sam2
from unsamv2.model.build import SHIPPED_ADAPTER, SHIPPED_BASE, shipped_weights
from unsamv2.scenes import iter_scenes
from unsamv2.train.probe import click_following

HELD_OUT = dict(n=4, seed=1000, size=256)  # the evaluation seed: never pretrained or mined on
HELD_OUT_SCENES = dict(scenes=HELD_OUT["n"], seed=HELD_OUT["seed"], size=HELD_OUT["size"])


def _regions(level: int):
    """(scene image, node) of every held-out region of ``level`` with at least 100 pixels."""
    for scene in iter_scenes(HELD_OUT["n"], HELD_OUT["seed"], HELD_OUT["size"]):
        for node in scene.nodes:
            if node.level == level and node.area >= 100:
                yield scene.image, node


def _sam2_best3(model, level: int) -> float:
    baseline = Sam2Baseline.from_model(model)
    ious, current = [], None
    for image, node in _regions(level):
        if current is not image:
            baseline.set_image(image)
            current = image
        points, labels = ClickSession(node.mask).click(None)
        masks, _, _ = baseline.predict_multimask(points, labels)
        ious.append(max(mask_iou(node.mask, m) for m in masks))
    return float(np.mean(ious))


def test_shipped_files_are_small_and_weights_only():
    for name in (SHIPPED_BASE, SHIPPED_ADAPTER):
        assert os.path.getsize(shipped_weights(name)) < 20 * 2**20
    payload = torch.load(shipped_weights(SHIPPED_BASE), weights_only=True)
    assert set(payload) == {"model"}  # the official SAM-2 layout


@pytest.mark.slow
def test_pretrained_base_segments_held_out_scenes_far_better_than_random():
    with torch.inference_mode():
        trained = {level: _sam2_best3(build_sam2("base"), level) for level in (0, 1)}
        random = {level: _sam2_best3(build_sam2("base", pretrained=False, seed=0), level) for level in (0, 1)}
    # measured: trained 0.631 / 0.409 (objects / parts), random 0.042 / 0.016 (BENCHMARKS.md has
    # the 32-scene numbers: 0.626 / 0.384); the base that ignored the click had 0.275 / 0.160
    assert trained[0] > 0.5 and trained[1] > 0.3, trained
    assert trained[0] > random[0] + 0.4 and trained[1] > random[1] + 0.25, (trained, random)


@pytest.mark.slow
def test_pretrained_base_follows_the_click():
    """Clicks on different objects give different masks. A base whose image embedding outgrew
    the prompt encoder's positional encoding ignored the click (the same masks for every click
    of an image, pairwise IoU ~1): the regression this pins."""
    with torch.inference_mode():
        overlap = click_following(Sam2Baseline.from_model(build_sam2("base")), **HELD_OUT_SCENES)
    assert overlap < 0.3, overlap  # measured 0.046; the click-blind base: 0.948


def _dial(adapter):
    """Mean IoU at each object's own g, and the median area ratio of the g = 0.1 and g = 1 masks."""
    predictor = UnSAMv2Predictor(build_model("base", adapter=adapter))
    own, ratio, current = [], [], None
    with torch.inference_mode():
        for image, node in _regions(0):
            if current is not image:
                predictor.set_image(image)
                current = image
            points, labels = ClickSession(node.mask).click(None)
            masks, _, _ = predictor.predict(points, labels, granularity=[node.granularity, 0.1, 1.0])
            own.append(mask_iou(node.mask, masks[0]))
            ratio.append(masks[1].sum() / max(masks[2].sum(), 1))
    return float(np.mean(own)), float(np.median(ratio))


@pytest.mark.slow
def test_shipped_unsamv2_turns_the_dial():
    """The default model (shipped base + shipped adapter): on the same click a small g gives a far
    smaller mask than g = 1, and at each object's own g it beats the untrained adapter.
    Measured: own-g IoU 0.146 (untrained 0.039), area ratio g=0.1 / g=1 0.015 (untrained 1.0)."""
    own, ratio = _dial(shipped_weights(SHIPPED_ADAPTER))
    untrained_own, untrained_ratio = _dial(None)
    assert own > untrained_own + 0.05 and own > 0.1
    assert ratio < 0.5 and untrained_ratio > 0.9


def test_segment_with_no_model_flags_uses_the_shipped_unsamv2(tmp_path, capsys):
    scene = next(iter(iter_scenes(1, 1000, 256)))
    image = tmp_path / "scene.png"
    from PIL import Image

    Image.fromarray(scene.image).save(image)
    node = max((n for n in scene.nodes if n.level == 0), key=lambda n: n.area)
    x, y = ClickSession(node.mask).click(None)[0][0]
    out = tmp_path / "out"
    assert main(["segment", str(image), "--point", f"{x:g},{y:g}", "--granularity", "0.3", "1.0",
                 "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert sorted(p.suffix for p in out.iterdir() if p.suffix == ".png")


def test_adapter_name_shipped_is_the_shipped_adapter_file():
    from unsamv2.model.adapter import adapter_state_dict

    by_name = adapter_state_dict(build_model("base", adapter="shipped"))
    by_path = adapter_state_dict(build_model("base", adapter=shipped_weights(SHIPPED_ADAPTER)))
    assert by_name.keys() == by_path.keys() and all(torch.equal(by_name[k], by_path[k]) for k in by_name)
    untrained = adapter_state_dict(build_model("base", warn_untrained=False))
    assert any(not torch.equal(by_name[k], untrained[k]) for k in by_name)
