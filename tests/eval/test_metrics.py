"""NoC, NoF and mIoU edge cases."""

import math

import pytest

from unsamv2.errors import InputError
from unsamv2.eval.metrics import clicks_to_reach, miou_at, miou_curve, noc, noc_key, nof, pad_curves


def test_noc_reached_at_click_one():
    assert noc([[0.95]], 0.9) == 1.0
    assert nof([[0.95]], 0.9) == 0


def test_noc_never_reached_counts_max_clicks_and_a_failure():
    curve = [0.5] * 20
    assert noc([curve], 0.9) == 20.0
    assert nof([curve], 0.9) == 1


def test_noc_exactly_at_max_clicks_is_twenty_but_not_a_failure():
    curve = [0.5] * 19 + [0.9]
    assert noc([curve], 0.9) == 20.0
    assert nof([curve], 0.9) == 0


def test_noc_is_the_mean_over_objects_and_uses_the_first_hit():
    curves = [[0.95], [0.5, 0.85, 0.95], [0.1, 0.95, 0.5] + [0.5] * 17]
    assert clicks_to_reach(curves, 0.9).tolist() == [1, 3, 2]
    assert noc(curves, 0.9) == pytest.approx(2.0)
    assert noc(curves, 0.8) == pytest.approx((1 + 2 + 2) / 3)


def test_threshold_equal_to_iou_counts_as_reached():
    assert noc([[0.8, 0.9]], 0.8) == 1.0


def test_thresholds_above_the_run_target_are_refused():
    with pytest.raises(InputError):
        noc([[0.95]], 0.95, run_target=0.9)
    assert noc([[0.95]], 0.85, run_target=0.85) == 1.0


def test_padding_keeps_the_last_iou():
    padded = pad_curves([[0.5, 0.92], [0.3] * 4], max_clicks=4)
    assert padded.tolist() == [[0.5, 0.92, 0.92, 0.92], [0.3] * 4]
    assert miou_curve([[0.5, 0.92], [0.3] * 4], 4) == pytest.approx([0.4, 0.61, 0.61, 0.61])
    assert miou_at([[0.5, 0.92], [0.7]], 1) == pytest.approx(0.6)  # 1-IoU


def test_empty_and_malformed_inputs():
    assert math.isnan(noc([], 0.9))
    assert nof([], 0.9) == 0
    assert all(math.isnan(v) for v in miou_curve([], 3))
    with pytest.raises(InputError):
        noc([[]], 0.9)
    with pytest.raises(InputError):
        noc([[0.1] * 21], 0.9)
    with pytest.raises(InputError):
        miou_at([[0.5]], 0)


def test_noc_key():
    assert [noc_key(t) for t in (0.8, 0.85, 0.9)] == ["80", "85", "90"]
