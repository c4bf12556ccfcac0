"""The click rule, pinned on hand-made masks, and the click loop."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import distance_transform_edt

from unsamv2.errors import InputError
from unsamv2.eval.interactive import (
    ClickSession,
    mask_iou,
    next_click,
    simulate_clicks,
    simulate_clicks_trace,
)


def box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def reference_click(gt, pred, ignore, not_clicked):
    """The rule written out literally on the full image (no cropping), as in the issue."""
    valid = np.ones_like(gt) if ignore is None else ~ignore
    fn = gt & ~pred & valid
    fp = pred & ~gt & valid
    fn_dt = distance_transform_edt(np.pad(fn, 1))[1:-1, 1:-1] * not_clicked
    fp_dt = distance_transform_edt(np.pad(fp, 1))[1:-1, 1:-1] * not_clicked
    positive = fn_dt.max() > fp_dt.max()
    dt = fn_dt if positive else fp_dt
    ys, xs = np.where(dt == dt.max())
    return int(xs[0]), int(ys[0]), int(positive)


def test_first_click_is_the_deepest_interior_point():
    gt = box(7, 7, 1, 6, 1, 6)  # 5x5 square, centre (x=3, y=3) at distance 3
    assert next_click(gt, np.zeros_like(gt)) == (3, 3, 1)


def test_ties_inside_one_map_take_the_first_pixel_in_row_major_order():
    gt = box(6, 6, 2, 4, 1, 5)  # two rows: every pixel is at distance 1
    assert next_click(gt, np.zeros_like(gt)) == (1, 2, 1)


def test_equal_fn_and_fp_peaks_give_a_negative_click():
    gt = box(5, 9, 1, 4, 0, 3)  # 3x3, peak 2 at (x=1, y=2)
    pred = box(5, 9, 1, 4, 5, 8)  # disjoint 3x3, peak 2 at (x=6, y=2)
    assert next_click(gt, pred) == (6, 2, 0)


def test_strictly_larger_fn_peak_gives_a_positive_click():
    gt = box(9, 12, 1, 8, 0, 7)  # 7x7: peak 4
    pred = box(9, 12, 1, 4, 8, 11)  # 3x3 false positive: peak 2
    assert next_click(gt, pred) == (3, 4, 1)


def test_larger_fp_region_gets_the_negative_click():
    gt = box(10, 10, 0, 2, 0, 2)  # tiny object: FN peak 1
    pred = box(10, 10, 3, 10, 3, 10) | gt  # a 7x7 false positive, deepest at (x=6, y=6)
    assert next_click(gt, pred) == (6, 6, 0)


def test_the_image_border_counts_as_a_boundary():
    # Object touching the left, top and bottom borders: without the 1-px padding the deepest
    # point would be pushed against the border.
    gt = box(5, 5, 0, 5, 0, 3)
    assert next_click(gt, np.zeros_like(gt)) == (1, 1, 1)
    gt_corner = box(4, 4, 0, 4, 0, 4)  # the whole image: peak 2 at (x=1, y=1)
    assert next_click(gt_corner, np.zeros_like(gt_corner)) == (1, 1, 1)


def test_ignore_pixels_are_neither_errors_nor_clicked():
    gt = box(9, 9, 1, 8, 1, 8)  # 7x7, centre (4, 4)
    ignore = box(9, 9, 0, 9, 0, 4)  # hides the object's columns 1..3
    # Remaining FN: columns 4..7 (boundary at the ignored column 3), peak 2 first at (x=5, y=2).
    assert next_click(gt, np.zeros_like(gt), ignore=ignore) == (5, 2, 1)
    # A false positive entirely inside the ignore region does not attract a negative click.
    pred = box(9, 9, 0, 9, 0, 4)
    assert next_click(gt, pred, ignore=ignore) == (5, 2, 1)


def test_clicked_pixels_are_set_to_zero():
    gt = box(7, 7, 1, 6, 1, 6)
    not_clicked = np.ones_like(gt)
    not_clicked[3, 3] = False
    assert next_click(gt, np.zeros_like(gt), not_clicked=not_clicked) == (2, 2, 1)


def test_no_error_left_gives_the_reference_fallback():
    gt = box(5, 5, 1, 4, 1, 4)
    assert next_click(gt, gt.copy()) == (0, 0, 0)


@st.composite
def click_cases(draw):
    h, w = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    gt = draw(arrays(bool, (h, w)))
    pred = draw(arrays(bool, (h, w)))
    ignore = draw(st.one_of(st.none(), arrays(bool, (h, w))))
    not_clicked = ~draw(arrays(bool, (h, w)))
    return gt, pred, ignore, not_clicked


@settings(max_examples=300, deadline=None)
@given(click_cases())
@pytest.mark.slow
def test_cropped_transform_equals_the_literal_rule(case):
    gt, pred, ignore, not_clicked = case
    assert next_click(gt, pred, ignore=ignore, not_clicked=not_clicked) == reference_click(
        gt, pred, ignore, not_clicked
    )


def test_mask_iou_ignores_pixels_and_handles_empty_union():
    gt = box(4, 4, 0, 2, 0, 2)
    pred = box(4, 4, 0, 2, 0, 4)
    assert mask_iou(gt, pred) == pytest.approx(0.5)
    assert mask_iou(gt, pred, box(4, 4, 0, 4, 2, 4)) == 1.0
    empty = np.zeros((4, 4), bool)
    assert mask_iou(empty, empty) == 1.0


def test_loop_stops_at_click_one_when_the_first_prediction_is_good():
    gt = box(8, 8, 2, 6, 2, 6)
    assert simulate_clicks(gt, lambda p, lab: gt.copy()) == [1.0]


def test_loop_runs_to_max_clicks_when_never_reached():
    gt = box(8, 8, 2, 6, 2, 6)
    ious = simulate_clicks(gt, lambda p, lab: np.zeros_like(gt), max_clicks=7)
    assert ious == [0.0] * 7


def test_loop_stops_when_iou_equals_the_target():
    gt = box(10, 10, 0, 10, 0, 10)
    half = box(10, 10, 0, 10, 0, 9)  # IoU 0.9 exactly
    calls = []

    def predict(points, labels):
        calls.append(len(points))
        return half if len(points) >= 2 else box(10, 10, 0, 5, 0, 5)

    assert simulate_clicks(gt, predict, target_iou=0.9) == [0.25, 0.9]
    assert calls == [1, 2]


def test_predict_receives_all_clicks_oldest_first_in_xy():
    gt = box(9, 12, 1, 8, 0, 7)
    fp = box(9, 12, 1, 4, 8, 11)
    seen = []

    def predict(points, labels):
        seen.append((points.copy(), labels.copy()))
        return gt | fp  # keeps the false positive: the second click must be negative there

    trace = simulate_clicks_trace(gt, predict, max_clicks=2, keep_masks=True)
    points, labels = seen[-1]
    assert points.dtype == np.float32 and points.shape == (2, 2)
    assert labels.dtype == np.int32 and labels.tolist() == [1, 0]
    assert points[0].tolist() == [3.0, 4.0]  # (x, y) of the object's deepest point
    assert points[1].tolist() == [9.0, 2.0]  # centre of the 3x3 false positive
    assert np.array_equal(seen[0][0], points[:1])
    assert len(trace.masks) == 2 and trace.labels.tolist() == [1, 0]


def test_a_clicked_pixel_is_never_clicked_twice():
    gt = box(6, 6, 1, 5, 1, 5)
    session = ClickSession(gt)
    for _ in range(gt.sum()):
        session.click(None)
    assert len(set(session.points)) == gt.sum()


def test_bad_inputs_raise_input_errors():
    gt = box(5, 5, 1, 3, 1, 3)
    with pytest.raises(InputError):
        simulate_clicks(np.zeros((5, 5), bool), lambda p, lab: gt)
    with pytest.raises(InputError):
        simulate_clicks(gt, lambda p, lab: gt, ignore=gt)  # object entirely ignored
    with pytest.raises(InputError):
        simulate_clicks(gt, lambda p, lab: gt, max_clicks=0)
    with pytest.raises(InputError):
        simulate_clicks(gt, lambda p, lab: np.zeros((4, 4), bool))
