"""Run history in a report store (local and S3) and the regression verdict."""

import dataclasses

import pytest
from eval.fakes import SceneTruthPredictor

from unsamv2.errors import InputError
from unsamv2.eval.datasets import SceneDataset
from unsamv2.eval.history import (
    append_history,
    check_regressions,
    lower_is_better,
    pin_baseline,
    pinned_baseline,
    read_history,
)
from unsamv2.eval.runner import EvalConfig, evaluate
from unsamv2.scenes import iter_scenes

N, SEED, SIZE = 2, 4, 96
CFG = EvalConfig(policies=("oracle",), max_clicks=3, gallery_size=0)


def run(erode=0, run_id=None, config=CFG):
    predictor = SceneTruthPredictor(list(iter_scenes(N, SEED, SIZE)), erode=erode)
    return evaluate(predictor, SceneDataset(N, SEED, SIZE), config, generator=predictor,
                    model=f"erode{erode}", progress=False, run_id=run_id)


@pytest.fixture(scope="module")
def good():
    return run(0, "run-good")


@pytest.fixture(scope="module")
def bad():
    return run(2, "run-bad")


def test_first_run_has_nothing_to_compare(good, tmp_path):
    verdict = check_regressions(good, str(tmp_path))
    assert verdict.status == "no_reference" and not verdict.regressed
    append_history(str(tmp_path), good)
    assert set(read_history(str(tmp_path)).column("run_id").to_pylist()) == {"run-good"}


def test_same_results_pass_and_a_worse_checkpoint_is_flagged(good, bad, tmp_path):
    store = str(tmp_path)
    append_history(store, good)
    again = dataclasses.replace(good, run_id="run-good-2", created_at="2099-01-01T00:00:00+00:00")
    verdict = check_regressions(again, store)
    assert verdict.status == "pass" and verdict.previous_run == "run-good" and verdict.deltas
    append_history(store, again)
    verdict = check_regressions(bad, store)
    assert verdict.regressed and verdict.previous_run == "run-good-2"
    flagged = {d.metric for d in verdict.regressions}
    # The eroding predictor is worse interactively; its whole-image masks are unchanged.
    assert flagged == {"oracle/NoC80", "oracle/NoC85", "oracle/NoC90", "oracle/1-IoU", "oracle/mIoU@3"}
    assert all(d.against == "previous" for d in verdict.regressions)
    assert "regression" in verdict.summary() and "oracle/NoC90" in verdict.to_markdown()
    # Timings are informational only, never flagged.
    assert not any(d.metric.endswith("sec_per_object") and d.regressed for d in verdict.deltas)


def test_pinned_baseline_is_compared_too(good, bad, tmp_path):
    store = str(tmp_path)
    append_history(store, good)
    with pytest.raises(InputError):
        pin_baseline(store, "no-such-run")
    pin_baseline(store, "run-good")
    assert pinned_baseline(store) == "run-good"
    later = dataclasses.replace(bad, created_at="2099-01-01T00:00:00+00:00")
    append_history(store, later)
    # The bad run is now "previous": a bad rerun no longer regresses against it, but it still
    # regresses against the pinned baseline.
    verdict = check_regressions(dataclasses.replace(bad, run_id="run-bad-2"), store)
    assert verdict.regressed and {d.against for d in verdict.regressions} == {"baseline"}
    assert verdict.baseline_run == "run-good"


def test_tolerances_and_directions(good, bad, tmp_path):
    store = str(tmp_path)
    append_history(store, good)
    assert not check_regressions(bad, store, tolerances={"*/NoC*": 100.0, "*IoU*": 1.0, "whole/*": 1.0}).regressed
    assert lower_is_better("oracle/NoC90") and lower_is_better("oracle/NoF90")
    assert not lower_is_better("oracle/1-IoU") and not lower_is_better("whole/AR1000")


def test_history_replaces_rows_of_a_retried_run(good, tmp_path):
    store = str(tmp_path)
    append_history(store, good)
    append_history(store, good)
    assert read_history(store).num_rows == len(good.metrics())


def test_other_protocols_are_not_compared(good, tmp_path):
    store = str(tmp_path)
    append_history(store, good)
    other = run(0, "run-other", EvalConfig(policies=("oracle",), max_clicks=4, gallery_size=0))
    verdict = check_regressions(other, store)
    assert verdict.status == "no_reference" and verdict.incomparable


@pytest.mark.integration
def test_history_on_s3(good, s3_bucket):
    store = f"{s3_bucket}/eval-store"
    append_history(store, good)
    assert read_history(store).num_rows == len(good.metrics())
    pin_baseline(store, good.run_id)
    assert check_regressions(dataclasses.replace(good, run_id="x"), store).status == "pass"


def test_previous_prefers_a_run_with_the_same_protocol(good, tmp_path):
    store = str(tmp_path)
    append_history(store, good)
    other = run(0, "run-other", EvalConfig(policies=("oracle",), max_clicks=4, gallery_size=0))
    append_history(store, dataclasses.replace(other, created_at="2099-01-01T00:00:00+00:00"))
    verdict = check_regressions(dataclasses.replace(good, run_id="again"), store)
    assert verdict.previous_run == "run-good" and verdict.status == "pass"


def test_eval_result_says_whether_the_run_regressed(good, bad, tmp_path):
    """record_report: the typed result's ``regressed`` is the history's verdict, the same as the
    verdict.json it writes; ``to_dict`` is JSON-ready."""
    import json

    from unsamv2.eval.result import record_report

    store = str(tmp_path / "store")
    first = record_report(good, str(tmp_path / "r1"), store)
    assert first.verdict is not None and first.verdict.status == "no_reference" and not first.regressed
    again = dataclasses.replace(good, run_id="run-good-2", created_at="2099-01-01T00:00:00+00:00")
    passed = record_report(again, str(tmp_path / "r2"), store)
    assert passed.verdict is not None and passed.verdict.status == "pass" and not passed.regressed
    flagged = record_report(bad, str(tmp_path / "r3"), store)
    assert flagged.regressed and "regression" in flagged.summary and flagged.run_id == "run-bad"
    for result in (passed, flagged):
        on_disk = json.loads(open(result.files["verdict"]).read())
        assert on_disk["regressed"] is result.regressed and on_disk["summary"] == result.summary
    assert flagged.metrics == {f"{d}/{m}": v for (d, m), v in bad.metrics().items()}
    values = json.loads(json.dumps(flagged.to_dict()))
    assert values["regressed"] is True and values["verdict"] == flagged.summary
    assert values["files"]["html"].endswith("report.html") and values["metrics"] == flagged.metrics


def test_eval_result_without_history_never_regressed(bad, tmp_path):
    from unsamv2.eval.result import NO_HISTORY, record_report

    result = record_report(bad, str(tmp_path / "r"))
    assert result.verdict is None and not result.regressed and result.summary == NO_HISTORY
    assert "verdict" not in result.files and result.probe is None
    probed = result.with_probe({"gt_g": 0.5}, str(tmp_path / "r" / "probe.json"))
    assert probed.files["probe"].endswith("probe.json") and "probe" not in result.files
    assert probed.to_dict()["probe"] == {"gt_g": 0.5} and probed.to_dict()["verdict"] is None
