"""evaluate() end to end on the procedural scenes with a perfect (and a worse) predictor."""

import json

import pytest
from eval.fakes import SceneTruthPredictor

from unsamv2.errors import InputError
from unsamv2.eval.datasets import SceneDataset
from unsamv2.eval.report import EvalReport
from unsamv2.eval.runner import EvalConfig, evaluate
from unsamv2.scenes import iter_scenes

N, SEED, SIZE = 2, 5, 96
CONFIG = EvalConfig(policies=("oracle", "g=1", "sam2-single", "sam2-best3"), max_clicks=5, gallery_size=2)


@pytest.fixture(scope="module")
def perfect_report():
    predictor = SceneTruthPredictor(list(iter_scenes(N, SEED, SIZE)))
    datasets = [SceneDataset(N, SEED, SIZE, kind="object"), SceneDataset(N, SEED, SIZE, kind="part")]
    report = evaluate(predictor, datasets, CONFIG, generator=predictor, model="perfect", progress=False)
    return report, predictor


def test_every_image_is_embedded_once_for_all_objects_policies_and_g(perfect_report):
    report, predictor = perfect_report
    assert len(predictor.embedded) == 2 * N  # two datasets of N images; baseline == predictor
    assert all(d.n_images == N for d in report.datasets)


def test_a_perfect_hierarchy_needs_one_click_under_the_oracle(perfect_report):
    report, _ = perfect_report
    objects = report.dataset("scenes-objects")
    oracle = objects.policy("oracle")
    assert objects.target_iou == 0.90 and oracle.n_objects == objects.n_objects > 0
    assert oracle.noc == {"80": 1.0, "85": 1.0, "90": 1.0} and oracle.nof["90"] == 0
    assert oracle.iou1 == 1.0 and oracle.miou == [1.0] * 5
    assert objects.policy("g=1").noc["90"] == 1.0
    assert sum(oracle.chosen_g.values()) == oracle.n_objects
    assert set(oracle.iou1_by_g) == {f"{g / 10}" for g in range(1, 11)}
    parts = report.dataset("scenes-parts")
    assert parts.target_iou == 0.85 and parts.thresholds == [0.80, 0.85]
    assert parts.policy("oracle").noc["85"] == 1.0
    # At g = 1 a click on a part returns its whole object: worse than the oracle on parts.
    assert parts.policy("g=1").noc["85"] > 1.0


def test_whole_image_ar_of_the_ground_truth_is_one(perfect_report):
    report, _ = perfect_report
    wi = report.dataset("scenes-objects").whole_image
    assert wi is not None and wi.ar["1000"] == pytest.approx(1.0) and wi.ar["1"] < 1.0
    assert set(wi.ar_by_g) == {f"{g / 10}" for g in range(1, 11)} and wi.n_detections > 0


def test_report_round_trips_through_json(perfect_report):
    report, _ = perfect_report
    again = EvalReport.from_json(report.to_json())
    assert again == report
    assert len(again.gallery) == 4 and again.gallery[0].png.startswith(b"\x89PNG")
    doc = json.loads(report.to_json())
    assert doc["protocol"]["policies"] == list(CONFIG.policies) and doc["protocol"]["protocol_hash"]
    assert doc["code_version"].startswith("0.") and "object_rows" not in doc
    rows = report.object_rows
    assert {r["policy"] for r in rows} == set(CONFIG.policies)
    assert all(r["clicks"] == len(r["ious"]) for r in rows)


def test_policies_without_their_predictor_are_refused():
    with pytest.raises(InputError):
        evaluate(None, [SceneDataset(1, 0, 64)], EvalConfig(policies=("oracle",)), progress=False)
    with pytest.raises(InputError):
        EvalConfig(policies=("nonsense",))


def test_a_worse_predictor_scores_worse():
    scenes = list(iter_scenes(N, SEED, SIZE))
    cfg = EvalConfig(policies=("oracle",), max_clicks=3, gallery_size=0)
    worse = evaluate(SceneTruthPredictor(scenes, erode=2), SceneDataset(N, SEED, SIZE), cfg, progress=False)
    oracle = worse.datasets[0].policy("oracle")
    assert oracle.noc["90"] > 1.0 and oracle.iou1 < 1.0


def test_baseline_only_run_embeds_the_baseline_and_makes_no_gallery():
    scenes = list(iter_scenes(1, SEED, SIZE))
    baseline = SceneTruthPredictor(scenes)
    report = evaluate(None, SceneDataset(1, SEED, SIZE), EvalConfig(policies=("sam2-best3",), max_clicks=2),
                      baseline=baseline, progress=False)
    assert len(baseline.embedded) == 1 and report.gallery == []
    assert report.datasets[0].policy("sam2-best3").n_objects > 0
