"""Invariants of the training click sampler (uniform over the error region, SAM-2's rule)."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unsamv2.train.clicks import sample_clicks


def masks(draw, n, h, w):
    bits = draw(st.lists(st.booleans(), min_size=n * h * w, max_size=n * h * w))
    return torch.tensor(bits, dtype=torch.bool).reshape(n, h, w)


@st.composite
def cases(draw):
    n, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    gt = masks(draw, n, h, w)
    pred = masks(draw, n, h, w) if draw(st.booleans()) else None
    return gt, pred, draw(st.integers(0, 2**31))


@settings(max_examples=200, deadline=None)
@given(cases())
def test_click_lies_in_the_error_region_with_the_right_label(case):
    gt, pred, seed = case
    points, labels = sample_clicks(gt, pred, torch.Generator().manual_seed(seed))
    n, h, w = gt.shape
    assert points.shape == (n, 1, 2) and points.dtype == torch.float32
    assert labels.shape == (n, 1) and labels.dtype == torch.int32
    p = torch.zeros_like(gt) if pred is None else pred
    for k in range(n):
        x, y = int(points[k, 0, 0]), int(points[k, 0, 1])
        assert 0 <= x < w and 0 <= y < h
        error = gt[k] ^ p[k]
        label = int(labels[k, 0])
        if error.any():
            assert error[y, x], "the click must be an error pixel"
            assert label == int(gt[k, y, x]), "false negative -> positive, false positive -> negative"
        elif (~gt[k]).any():
            assert label == 0 and not gt[k, y, x], "no error: a negative click in the background"
        else:
            assert (x, y, label) == (0, 0, 0)


def test_first_click_is_positive_inside_the_target():
    gt = torch.zeros(3, 8, 8, dtype=torch.bool)
    gt[0, 2:5, 3:6] = True
    gt[1, 0, 0] = True
    gt[2] = True
    points, labels = sample_clicks(gt, None, torch.Generator().manual_seed(1))
    assert labels[:, 0].tolist() == [1, 1, 1]
    for k in range(3):
        assert gt[k, int(points[k, 0, 1]), int(points[k, 0, 0])]


def test_clicks_are_uniform_over_the_error_region():
    gt = torch.zeros(1, 5, 5, dtype=torch.bool)
    gt[0, 1:3, 1:3] = True  # 4 target pixels
    pred = gt.clone()
    pred[0, 1, 1] = False  # one false negative
    pred[0, 4, 4] = True  # one false positive
    # 4000 copies of the object in one call: each row draws its own uniform number
    points, labels = sample_clicks(gt.expand(4000, 5, 5), pred.expand(4000, 5, 5), torch.Generator().manual_seed(0))
    keys = [(int(x), int(y), int(lab)) for (x, y), lab in zip(points[:, 0].tolist(), labels[:, 0].tolist(), strict=True)]
    assert set(keys) == {(1, 1, 1), (4, 4, 0)}
    assert abs(keys.count((1, 1, 1)) - 2000) < 150  # binomial sd ~ 32
    first, _ = sample_clicks(gt.expand(2000, 5, 5), None, torch.Generator().manual_seed(1))
    cells = [tuple(p) for p in first[:, 0].tolist()]
    freq = np.array([cells.count(c) for c in [(1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (2.0, 2.0)]])
    assert freq.sum() == 2000 and (np.abs(freq - 500) < 90).all()


def test_same_generator_state_gives_the_same_clicks():
    gt = torch.rand(6, 16, 16, generator=torch.Generator().manual_seed(3)) > 0.5
    pred = torch.rand(6, 16, 16, generator=torch.Generator().manual_seed(4)) > 0.5
    a = sample_clicks(gt, pred, torch.Generator().manual_seed(9))
    b = sample_clicks(gt, pred, torch.Generator().manual_seed(9))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
