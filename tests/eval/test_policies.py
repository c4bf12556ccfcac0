"""Granularity policies on predictors with real behaviour (a part hierarchy, scripted IoUs)."""

import numpy as np
import pytest
from eval.fakes import HierarchyPredictor, ScriptedPredictor, two_object_hierarchy
from hypothesis import given, settings
from hypothesis import strategies as st

from unsamv2.errors import InputError
from unsamv2.eval.policies import (
    PAPER_GRANULARITIES,
    FixedGranularity,
    GranularityRun,
    LoopSettings,
    OracleGranularity,
    Sam2BestOf3,
    Sam2Single,
    choose_oracle,
    parse_policy,
)


def test_oracle_picks_the_first_g_that_segments_the_part_in_one_click():
    image, nodes = two_object_hierarchy()
    predictor = HierarchyPredictor(nodes)
    part = nodes[1]  # left part of object 0, g = 0.6
    run = OracleGranularity().run(predictor, part.mask, None, LoopSettings())
    assert run.ious == [1.0]
    # g = 0.1 .. 0.4 give a sub-part first (IoU 0.5) and need a second click; 0.5 .. 0.8 give the
    # part; the lowest of the tied one-click g wins.
    assert run.granularity == 0.5
    by_g = {r.granularity: r for r in run.sweep}
    assert [by_g[g].clicks for g in (0.1, 0.2, 0.3, 0.4)] == [2, 2, 2, 2]
    assert by_g[0.1].ious == [0.5, 1.0]
    # The early cut: after g = 0.5 wins at click 1, later g get a budget of one click.
    assert all(by_g[g].budget == 1 and len(by_g[g].ious) == 1 for g in (0.6, 0.7, 0.8, 0.9, 1.0))
    assert by_g[0.9].clicks is None and by_g[0.9].ious == [0.5]  # the whole object
    # 1 batched first click + one second click for each of g = 0.1 .. 0.4.
    assert run.n_predictions == 5
    assert predictor.calls == 5
    assert run.labels.tolist() == [1]


def test_oracle_tie_break_by_first_click_iou():
    curves = {0.1: [0.5, 0.95], 0.2: [0.7, 0.95], 0.3: [0.6, 0.8, 0.95]}
    curves.update({g: [0.1] * 20 for g in (0.4, 0.5)})
    predictor = ScriptedPredictor(curves)
    policy = OracleGranularity(granularities=(0.1, 0.2, 0.3, 0.4, 0.5))
    run = policy.run(predictor, predictor.gt, None, LoopSettings())
    assert run.granularity == 0.2 and run.ious == [0.7, 0.95]
    by_g = {r.granularity: r for r in run.sweep}
    assert by_g[0.3].ious == [0.6, 0.8] and by_g[0.3].clicks is None  # cut at budget 2
    assert by_g[0.5].ious == [0.1, 0.1]


def test_oracle_when_nothing_reaches_the_target_takes_the_best_first_click():
    curves = {g: [0.1] * 20 for g in PAPER_GRANULARITIES}
    curves[0.4] = [0.3] * 20
    curves[0.7] = [0.3] + [0.8] * 19
    predictor = ScriptedPredictor(curves)
    run = OracleGranularity().run(predictor, predictor.gt, None, LoopSettings(max_clicks=20))
    assert run.granularity == 0.4 and len(run.ious) == 20


def reference_oracle(curves, gs, target, max_clicks):
    """The reference (GraCo evaluate_sample) selection loop, written out literally."""
    min_num, results, last = 100, [], []
    for g in gs:
        ious = []
        for ci in range(max_clicks):
            ious.append(curves[g][ci])
            if ious[-1] >= target:
                min_num = min(min_num, ci + 1)
                break
            if min_num <= max_clicks and ci + 1 > min_num:
                break
        results.append(ious)
        last.append(ci)
    last = np.array(last)
    tied = np.flatnonzero(last == last.min())
    pick = tied[int(np.argmax([results[i][0] for i in tied]))]
    return gs[pick], results[pick]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_oracle_matches_the_reference_selection(data):
    max_clicks = data.draw(st.integers(1, 6))
    gs = (0.1, 0.2, 0.3, 0.4, 0.5)
    values = st.sampled_from([0.3, 0.5, 0.85, 0.9, 0.95, 1.0])
    curves = {g: data.draw(st.lists(values, min_size=max_clicks, max_size=max_clicks)) for g in gs}
    predictor = ScriptedPredictor(curves)
    run = OracleGranularity(granularities=gs).run(predictor, predictor.gt, None,
                                                  LoopSettings(target_iou=0.9, max_clicks=max_clicks))
    g_ref, ious_ref = reference_oracle(curves, gs, 0.9, max_clicks)
    assert run.granularity == g_ref
    assert run.ious == ious_ref


def test_choose_oracle_rules():
    def r(g, ious, clicks, budget=20):
        return GranularityRun(g, ious, clicks, budget)

    assert choose_oracle([r(0.1, [0.5, 0.9], 2), r(0.2, [0.95], 1)], 20) == 1
    assert choose_oracle([r(0.1, [0.95], 1), r(0.2, [0.97], 1)], 20) == 1
    assert choose_oracle([r(0.1, [0.95], 1), r(0.2, [0.95], 1)], 20) == 0  # exact tie: first g
    with pytest.raises(InputError):
        choose_oracle([], 20)


def test_mask_feedback_passes_the_previous_low_res_logits_of_the_same_g():
    curves = {0.1: [0.2, 0.4, 0.95], 0.2: [0.1, 0.2, 0.3]}
    predictor = ScriptedPredictor(curves)
    OracleGranularity(granularities=(0.1, 0.2)).run(predictor, predictor.gt, None, LoopSettings())
    # first call batched, no mask input; then g=0.1 clicks 2, 3 get logits of clicks 1, 2.
    assert predictor.mask_inputs[0] == (0.1, 1, None)
    assert predictor.mask_inputs[1:3] == [(0.1, 2, 101.0), (0.1, 3, 102.0)]
    assert predictor.mask_inputs[3:5] == [(0.2, 2, 201.0), (0.2, 3, 202.0)]
    off = ScriptedPredictor(curves)
    OracleGranularity(granularities=(0.1, 0.2)).run(off, off.gt, None, LoopSettings(mask_feedback=False))
    assert all(m is None for _, _, m in off.mask_inputs)


def test_fixed_granularity_runs_one_g():
    image, nodes = two_object_hierarchy()
    predictor = HierarchyPredictor(nodes)
    whole = FixedGranularity(1.0).run(predictor, nodes[0].mask, None, LoopSettings())
    assert whole.ious == [1.0] and whole.granularity == 1.0 and whole.policy == "g=1"
    sub = FixedGranularity(0.2).run(predictor, nodes[0].mask, None, LoopSettings(max_clicks=5))
    assert sub.ious[0] == pytest.approx(0.25) and sub.ious[-1] > sub.ious[0]
    with pytest.raises(InputError):
        FixedGranularity(1.5)


def test_sam2_best_of_three_keeps_the_best_mask_and_feeds_back_its_logits():
    multimask = [[0.2, 0.6, 0.4], [0.7, 0.92, 0.1]]
    predictor = ScriptedPredictor({}, multimask=multimask)
    best = Sam2BestOf3().run(predictor, predictor.gt, None, LoopSettings())
    assert best.ious == [0.6, 0.92] and best.granularity is None
    assert predictor.mask_inputs == [(-1.0, 1, None), (-1.0, 2, 11.0)]  # mask 1 of click 1
    single = Sam2Single().run(ScriptedPredictor({}, multimask=multimask), predictor.gt, None,
                              LoopSettings(max_clicks=2))
    assert single.ious == [0.2, 0.7]


def test_parse_policy():
    assert parse_policy("oracle").name == "oracle"
    assert parse_policy("g=0.3").granularity == 0.3
    assert parse_policy("fixed:0.7").name == "g=0.7"
    assert parse_policy("SAM2-best3").name == "sam2-best3"
    with pytest.raises(InputError):
        parse_policy("best")
