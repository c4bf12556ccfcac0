"""Loss terms against values computed by hand (SAM-2's training definitions)."""

import math

import pytest
import torch

from unsamv2.train.losses import (
    LossWeights,
    StepPrediction,
    dice_loss,
    interactive_loss,
    iou_l1_loss,
    object_score_loss,
    sigmoid_focal_loss,
)

LN2 = math.log(2.0)


def t(values):
    return torch.tensor(values, dtype=torch.float32)


def test_focal_loss_by_hand():
    # logit 0 -> p = 0.5: target 1 costs alpha * 0.5^2 * ln 2, target 0 costs (1 - alpha) * 0.5^2 * ln 2
    loss = sigmoid_focal_loss(t([[[0.0, 0.0]]]), t([[[1.0, 0.0]]]))
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx((0.25 * 0.25 + 0.75 * 0.25) * LN2 / 2, rel=1e-6)
    # logit ln 3 -> p = 0.75, target 1: 0.25 * (1 - 0.75)^2 * -ln(0.75)
    loss = sigmoid_focal_loss(t([[[math.log(3.0)]]]), t([[[1.0]]]))
    assert loss.item() == pytest.approx(0.25 * 0.0625 * math.log(4 / 3), rel=1e-6)
    # gamma 0 and alpha < 0: plain binary cross-entropy
    loss = sigmoid_focal_loss(t([[[2.0]]]), t([[[0.0]]]), alpha=-1, gamma=0)
    assert loss.item() == pytest.approx(math.log1p(math.exp(2.0)), rel=1e-6)


def test_dice_loss_by_hand():
    # p = (0.5, 0.5), t = (1, 0): 1 - (2 * 0.5 + 1) / (1 + 1 + 1) = 1/3
    assert dice_loss(t([[[0.0, 0.0]]]), t([[[1.0, 0.0]]])).item() == pytest.approx(1 / 3, rel=1e-6)
    # a confident perfect prediction has (almost) no loss, an empty target with p = 0.5 has 1 - 1 / 2
    assert dice_loss(t([[[40.0, -40.0]]]), t([[[1.0, 0.0]]])).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(t([[[0.0, 0.0]]]), t([[[0.0, 0.0]]])).item() == pytest.approx(0.5, rel=1e-6)


def test_iou_and_object_losses_by_hand():
    # prediction {0, 2}, target {0, 1}: IoU 1/3; predicted 0.5 -> |0.5 - 1/3| = 1/6
    loss = iou_l1_loss(t([[[1.0, -1.0, 1.0]]]), t([[[1.0, 1.0, 0.0]]]), t([0.5]))
    assert loss.item() == pytest.approx(1 / 6, rel=1e-6)
    present, absent = t([[[1.0, 0.0]]]), t([[[0.0, 0.0]]])
    assert object_score_loss(t([0.0]), present).item() == pytest.approx(LN2, rel=1e-6)
    assert object_score_loss(t([2.0]), absent).item() == pytest.approx(math.log1p(math.exp(2.0)), rel=1e-6)


def test_interactive_loss_sums_steps_and_normalises_by_objects():
    targets = torch.tensor([[[True, False]], [[False, False]]])  # object 2 is empty (absent)
    step = StepPrediction(logits=t([[[0.0, 0.0]], [[0.0, 0.0]]]), iou_pred=t([0.5, 0.5]),
                          object_logits=t([0.0, 2.0]))
    losses = interactive_loss([step, step], targets, num_objects=2.0, weights=LossWeights())
    focal = (0.0625 + 0.1875) * LN2 / 2  # object 1 only: an empty target has no mask losses
    dice = 1 / 3
    iou = abs(0.5 - 0.0)  # logits 0 are not > 0: predicted mask empty, IoU 0
    obj = LN2 + math.log1p(math.exp(2.0))
    expected = {"focal": 2 * focal / 2, "dice": 2 * dice / 2, "iou": 2 * iou / 2, "object": 2 * obj / 2}
    for name, value in expected.items():
        assert losses[name].item() == pytest.approx(value, rel=1e-6), name
    total = 20 * expected["focal"] + expected["dice"] + expected["iou"] + expected["object"]
    assert losses["total"].item() == pytest.approx(total, rel=1e-6)


def test_interactive_loss_weights_and_gradients():
    logits = torch.zeros(1, 4, 4, requires_grad=True)
    targets = torch.zeros(1, 4, 4, dtype=torch.bool)
    targets[0, :2] = True
    step = StepPrediction(logits, torch.tensor([0.3]), torch.tensor([0.1]))
    only_dice = LossWeights(focal=0, dice=1, iou=0, object=0)
    losses = interactive_loss([step], targets, 1.0, only_dice)
    assert losses["total"].item() == pytest.approx(losses["dice"].item())
    losses["total"].backward()
    grad = logits.grad[0]
    assert (grad[:2] < 0).all() and (grad[2:] > 0).all()  # push inside up, outside down


def test_multimask_step_penalises_only_the_best_mask_by_hand():
    # one object, 3 masks of 2 pixels, target (1, 0). Mask 0 logits (0, 0); mask 1 (ln 3, -ln 3)
    # (p = 0.75 / 0.25: the best); mask 2 (-ln 3, ln 3) (the worst).
    l3 = math.log(3.0)
    logits = t([[[[0.0, 0.0]], [[l3, -l3]], [[-l3, l3]]]])  # (1, 3, 1, 2)
    targets = torch.tensor([[[True, False]]])
    step = StepPrediction(logits, iou_pred=t([[0.2, 0.9, 0.0]]), object_logits=t([5.0]))
    terms = interactive_loss([step], targets, 1.0, LossWeights())  # selection by 20 focal + 1 dice
    # best mask: focal = (0.25 * 0.25^2 * ln(4/3) + 0.75 * 0.25^2 * ln(4/3)) / 2; dice = 1 - (1.5 + 1) / (1 + 1 + 1)
    focal_best = (0.25 + 0.75) * 0.0625 * math.log(4 / 3) / 2
    dice_best = 1 - 2.5 / 3
    assert terms["focal"].item() == pytest.approx(focal_best, rel=1e-5)
    assert terms["dice"].item() == pytest.approx(dice_best, rel=1e-5)
    # IoU of the binarised masks: mask 0 (0, 0) -> 0; mask 1 (1, 0) -> 1; mask 2 (0, 1) -> 0.
    # supervise_all_iou: mean |pred - actual| over the 3 masks = (0.2 + 0.1 + 0.0) / 3
    assert terms["iou"].item() == pytest.approx(0.3 / 3, rel=1e-5)
    chosen = LossWeights(supervise_all_iou=False)
    assert interactive_loss([step], targets, 1.0, chosen)["iou"].item() == pytest.approx(0.1, rel=1e-5)
    # gradients reach only the chosen mask's logits through focal + dice
    logits.requires_grad_(True)
    interactive_loss([StepPrediction(logits, t([[0.2, 0.9, 0.0]]), t([5.0]))], targets, 1.0,
                     LossWeights(20, 1, 0, 0))["total"].backward()
    assert logits.grad[0, 1].abs().sum() > 0
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0


def test_object_score_gate_sets_minus_1024_where_no_object():
    from unsamv2.train.losses import NO_OBJECT_SCORE, gate_by_object_score

    logits = torch.randn(3, 2, 4, 4, requires_grad=True)
    gated = gate_by_object_score(logits, t([[0.5], [0.0], [-2.0]]))
    assert torch.equal(gated[0], logits[0])
    assert (gated[1:] == NO_OBJECT_SCORE).all()  # a score of exactly 0 is "no object", as SAM-2's "> 0"
    gated.sum().backward()
    assert (logits.grad[0] == 1).all() and (logits.grad[1:] == 0).all()


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (-1.0, 2.0), (0.25, 1.5)])
def test_fused_mask_losses_equal_the_reference_terms_and_their_gradients(alpha, gamma):
    """The one-sigmoid form training uses gives the focal, dice and IoU of the reference
    definitions above (and the same gradients), for single and multimask logits, empty targets
    and rows gated to -1024 by the object score."""
    from unsamv2.train.losses import TargetStats, fused_mask_losses, mask_iou

    torch.manual_seed(1)
    targets = torch.rand(5, 12, 10) > 0.6
    targets[1] = False
    logits = torch.randn(5, 3, 12, 10) * 4
    logits[2] = -1024.0
    logits[3, 0, :4] = 30.0
    for x, expand in ((logits, targets[:, None]), (logits[:, 0].contiguous(), targets)):
        x = x.clone().requires_grad_()
        focal, dice, iou = fused_mask_losses(x, TargetStats(targets, LossWeights(focal_alpha=alpha)), gamma)
        ref_focal = sigmoid_focal_loss(x, expand.expand_as(x).float(), alpha, gamma)
        ref_dice = dice_loss(x, expand.float())
        torch.testing.assert_close(focal, ref_focal, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(dice, ref_dice, atol=1e-6, rtol=1e-5)
        assert torch.equal(iou, mask_iou(x, expand))
        ours = torch.autograd.grad((20 * focal + dice).sum(), x)[0]
        ref = torch.autograd.grad((20 * ref_focal + ref_dice).sum(), x)[0]
        torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-4)
