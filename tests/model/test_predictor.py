"""The interactive predictor: batching over g, granularity effect, input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unsamv2.errors import InputError
from unsamv2.model import UnSAMv2Predictor

POINTS, LABELS = [[200.0, 150.0], [30.0, 250.0]], [1, 0]


@pytest.fixture(scope="module")
def predictor(tiny_model, photo):
    pred = UnSAMv2Predictor(tiny_model)
    pred.set_image(photo)
    return pred


def test_outputs_have_the_documented_shapes(predictor, photo):
    masks, iou, low = predictor.predict(POINTS, LABELS, [0.1, 0.4, 0.7, 1.0])
    assert masks.shape == (4, *photo.shape[:2]) and masks.dtype == bool
    assert iou.shape == (4,) and iou.dtype == np.float32 and ((iou >= 0) & (iou <= 1)).all()
    side = predictor.model.low_res_size
    assert low.shape == (4, side, side) and low.dtype == np.float32
    masks1, iou1, low1 = predictor.predict(POINTS, LABELS, 0.4)
    assert masks1.shape == (1, *photo.shape[:2]) and iou1.shape == (1,)


def test_a_batch_over_g_equals_one_by_one(predictor):
    gs = [0.1, 0.35, 0.6, 0.85, 1.0]
    masks, iou, low = predictor.predict(POINTS, LABELS, gs)
    for j, g in enumerate(gs):
        m1, i1, l1 = predictor.predict(POINTS, LABELS, g)
        np.testing.assert_allclose(l1[0], low[j], atol=1e-5)
        np.testing.assert_allclose(i1[0], iou[j], atol=1e-6)
        # only pixels at the threshold could flip from float noise
        assert (m1[0] != masks[j]).mean() < 1e-4


def test_predict_batch_rows_are_independent_prompt_sets(predictor):
    coords = np.array([[[200, 150], [0, 0]], [[200, 150], [30, 250]], [[60, 70], [100, 90]]],
                      dtype=np.float32)
    labels = np.array([[1, -1], [1, 0], [1, 1]])
    gs = [0.2, 0.5, 0.9]
    masks, iou, low = predictor.predict_batch(coords, labels, gs)
    assert masks.shape[0] == iou.shape[0] == low.shape[0] == 3
    for row in range(3):
        _, i1, l1 = predictor.predict_batch(coords[row:row + 1], labels[row:row + 1], gs[row:row + 1])
        np.testing.assert_allclose(l1[0], low[row], atol=1e-5)
        np.testing.assert_allclose(i1[0], iou[row], atol=1e-6)
    np.testing.assert_allclose(low[1], predictor.predict(POINTS, LABELS, 0.5)[2][0], atol=1e-5)
    _, _, none = predictor.predict_batch(coords, labels, gs, return_masks=False)
    assert none is not None and predictor.predict_batch(coords, labels, gs, return_masks=False)[0] is None


def test_different_g_give_different_masks_on_a_hand_set_adapter(fresh_tiny, photo):
    model = fresh_tiny
    with torch.no_grad():  # make the granularity token dominate the prompt
        model.sam_prompt_encoder.granularity_encoder.mlp[6].weight.mul_(30.0)
    pred = UnSAMv2Predictor(model, mask_threshold=0.0)
    pred.set_image(photo)
    masks, _, low = pred.predict([[200, 150]], [1], [0.1, 0.55, 1.0])
    assert np.abs(low[0] - low[2]).max() > 0.05
    for i, j in ((0, 1), (1, 2), (0, 2)):
        assert (masks[i] != masks[j]).mean() > 0.01


def test_mask_input_is_used_and_broadcast(predictor):
    _, _, low = predictor.predict(POINTS, LABELS, [0.3, 0.9])
    fed_each = predictor.predict(POINTS, LABELS, [0.3, 0.9], mask_input=low)[2]
    fed_shared = predictor.predict(POINTS, LABELS, [0.3, 0.9], mask_input=low[0])[2]
    assert np.abs(fed_each - low).max() > 1e-3
    np.testing.assert_allclose(fed_shared[0], fed_each[0], atol=1e-5)
    assert np.abs(fed_shared[1] - fed_each[1]).max() > 1e-4
    single = predictor.predict(POINTS, LABELS, 0.3, mask_input=low[0:1])[2]
    np.testing.assert_allclose(single[0], fed_each[0], atol=1e-5)


def test_threshold_is_configurable(tiny_model, photo):
    loose = UnSAMv2Predictor(tiny_model, mask_threshold=-1.0)
    strict = UnSAMv2Predictor(tiny_model, mask_threshold=1.0)
    loose.set_image(photo)
    strict.set_image(photo)
    a = loose.predict(POINTS, LABELS, 0.5)[0]
    b = strict.predict(POINTS, LABELS, 0.5)[0]
    assert a.sum() >= b.sum() and (a | ~b).all()


def test_predict_before_set_image_is_a_clear_error(tiny_model):
    with pytest.raises(InputError, match="call set_image"):
        UnSAMv2Predictor(tiny_model).predict(POINTS, LABELS, 0.5)


@pytest.mark.parametrize("points, labels, match", [
    ([[420.0, 10.0]], [1], r"outside the 420x300 image"),
    ([[-1.0, 10.0]], [1], r"outside"),
    ([[10.0, 300.0]], [1], r"outside"),
    ([[float("nan"), 10.0]], [1], r"outside"),
    ([10.0, 20.0], [1], r"\(N, 2\)"),
    (np.zeros((0, 2)), [], r"N >= 1"),
    ([[10.0, 20.0]], [1, 0], r"one per point"),
    ([[10.0, 20.0]], [2], r"1 \(positive\) or 0"),
    ([[10.0, 20.0]], [0.5], r"1 \(positive\) or 0"),
    ([["a", "b"]], [1], r"numbers"),
])
def test_bad_points_are_clear_errors(predictor, points, labels, match):
    with pytest.raises(InputError, match=match):
        predictor.predict(points, labels, 0.5)


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.floats(max_value=-1e-6), st.floats(min_value=1.000001), st.just(float("nan"))))
def test_granularity_outside_unit_interval_is_rejected(predictor, g):
    with pytest.raises(InputError, match="granularity"):
        predictor.predict(POINTS, LABELS, [0.5, g])


@pytest.mark.parametrize("g", [[], "high", [[0.1, 0.2], [0.3]]])
def test_malformed_granularity_is_rejected(predictor, g):
    with pytest.raises(InputError, match="granularity"):
        predictor.predict(POINTS, LABELS, g)


def test_bad_images_and_mask_inputs_are_clear_errors(predictor, photo):
    pred = UnSAMv2Predictor(predictor.model)
    with pytest.raises(InputError, match="uint8"):
        pred.set_image(photo.astype(np.float32))
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        pred.set_image(photo[..., 0])
    with pytest.raises(InputError, match="uint8"):
        pred.set_image(photo.tolist())
    with pytest.raises(InputError, match="mask_input must be"):
        predictor.predict(POINTS, LABELS, [0.1, 0.2], mask_input=np.zeros((3, 64, 64)))
    with pytest.raises(InputError, match="mask_input must be"):
        predictor.predict(POINTS, LABELS, 0.1, mask_input=np.zeros((256, 256)))


def test_predict_batch_validates_its_inputs(predictor):
    coords = np.array([[[200, 150], [0, 0]]], dtype=np.float32)
    with pytest.raises(InputError, match="padding"):
        predictor.predict_batch(coords, [[1, 2]], [0.5])
    with pytest.raises(InputError, match="outside the 420x300 image"):
        predictor.predict_batch(np.array([[[200, 150], [500, 0]]]), [[1, 0]], [0.5])
    far_padding = np.array([[[200, 150], [-5, -5]]], dtype=np.float32)
    assert predictor.predict_batch(far_padding, [[1, -1]], [0.5])[1].shape == (1,)
    with pytest.raises(InputError, match="2 granularities for 1"):
        predictor.predict_batch(coords, [[1, -1]], [0.5, 0.6])
    with pytest.raises(InputError, match="mask_input must be"):
        predictor.predict_batch(coords, [[1, -1]], [0.5], mask_input=np.zeros((2, 64, 64)))
    with pytest.raises(InputError, match=r"\(B, N, 2\)"):
        predictor.predict_batch(coords[0], [1, -1], [0.5])
