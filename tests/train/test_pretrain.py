"""Base pretraining (``unsamv2 pretrain``, objective ``sam2``): SAM-2's supervised recipe on a
plain SAM-2, whose checkpoint loads strictly wherever a SAM-2.1 checkpoint does."""

import pytest
import torch

from unsamv2.cli import main
from unsamv2.model.build import build_model, build_sam2
from unsamv2.train import TrainConfig, train
from unsamv2.train.sam2_loop import Sam2ClickLoop


def test_sam2_loop_first_click_is_multimask_and_gated():
    model = build_sam2("tiny", seed=0).train()
    size = model.image_size
    images = torch.randn(2, 3, size, size)
    targets = torch.zeros(3, size, size, dtype=torch.bool)
    targets[0, 20:80, 30:90] = True
    targets[1, 100:200, 10:60] = True
    targets[2, 5:40, 200:250] = True
    head = model.sam_mask_decoder.pred_obj_score_head.layers[-1]
    for bias, gated in ((10.0, False), (-10.0, True)):  # object present / absent everywhere
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(bias)
        steps = Sam2ClickLoop(model, correction_clicks=2)(images, targets, torch.zeros(3), torch.tensor([2, 1]),
                                                          torch.Generator().manual_seed(0))
        assert len(steps) == 3
        assert steps[0].logits.shape == (3, 3, size, size) and steps[0].iou_pred.shape == (3, 3)
        assert steps[1].logits.shape == (3, size, size) and steps[2].iou_pred.shape == (3,)
        for step in steps:  # SAM-2's gate: every logit -1024 where the object score is <= 0
            assert bool((step.logits == -1024).all()) == gated


@pytest.mark.slow
def test_pretrain_runs_and_its_checkpoint_loads_everywhere(scene_table, tmp_path, capsys):
    out = str(tmp_path / "pretrain")
    config = TrainConfig(table_uri=scene_table["table"], output_uri=out, objective="sam2", trainable="full",
                         model_config="tiny", max_steps=3, warmup_steps=2, batch_size=2, max_masks_per_image=4,
                         correction_clicks=1, lr=1e-3, checkpoint_every=2, val_images=1, use_split=False)
    before = {k: v.clone() for k, v in build_sam2("tiny", seed=None).state_dict().items()}
    result = train(config)
    assert result.steps == 3 and result.adapter_uri == "" and result.model_uri.endswith("sam2.pt")
    payload = torch.load(result.model_uri, weights_only=True)
    assert set(payload) == {"model"}
    assert not any("granularity" in k or "lora" in k for k in payload["model"])
    assert set(payload["model"]) == set(before)
    # every weight trained (not only a head): the trunk's patch embedding moved
    trained = build_sam2("tiny", checkpoint=result.model_uri)
    assert not torch.equal(trained.state_dict()["image_encoder.trunk.patch_embed.proj.weight"],
                           build_sam2("tiny", seed=0).state_dict()["image_encoder.trunk.patch_embed.proj.weight"])
    # loads strictly as an UnSAMv2 base (adapter at its init) and through the CLI
    model = build_model("tiny", checkpoint=result.model_uri)
    for key, value in payload["model"].items():
        assert torch.equal(model.state_dict()[key], value)
    import os

    image = os.path.join(scene_table["images"], "scene_000.png")
    assert main(["segment", image, "--config", "tiny", "--checkpoint", result.model_uri, "--point", "40,40",
                 "--granularity", "0.5", "--out", str(tmp_path / "seg")]) == 0


def test_box_prompts_are_sam2_mask_to_box_and_predict_one_mask():
    from unsamv2.train.sam2_loop import box_prompts

    targets = torch.zeros(2, 40, 50, dtype=torch.bool)
    targets[0, 5:9, 10:21] = True  # rows 5..8, columns 10..20
    points, labels = box_prompts(targets)
    assert points[0].tolist() == [[10.0, 5.0], [20.0, 8.0]]
    assert points[1].tolist() == [[0.0, 0.0], [49.0, 39.0]]  # empty target: the whole image
    assert labels.tolist() == [[2, 3], [2, 3]]
    model = build_sam2("tiny", seed=0).train()
    size = model.image_size
    big = torch.zeros(2, size, size, dtype=torch.bool)
    big[:, 30:120, 40:200] = True
    steps = Sam2ClickLoop(model, correction_clicks=1, box_prob=1.0)(
        torch.randn(1, 3, size, size), big, torch.zeros(2), torch.tensor([2]), torch.Generator().manual_seed(0))
    assert steps[0].logits.shape == (2, size, size)  # a box prompt is not multimask in SAM-2
