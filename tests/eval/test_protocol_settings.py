"""Whole-image and baseline settings are part of the protocol: config, report and hash."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from eval.fakes import SceneTruthPredictor

from unsamv2.errors import InputError
from unsamv2.eval.datasets import SceneDataset
from unsamv2.eval.report import EvalReport, to_markdown
from unsamv2.eval.runner import EvalConfig, evaluate
from unsamv2.eval.whole_image import WholeImageSettings
from unsamv2.scenes import iter_scenes

N, SEED, SIZE = 1, 5, 64


class ReportingGenerator(SceneTruthPredictor):
    """A perfect generator that reports generator settings, as ``UnSAMv2MaskGenerator`` does."""

    def __init__(self, scenes, **settings):
        super().__init__(scenes)
        self._settings = settings

    def settings(self):
        return dict(self._settings)


def _run(generator, config=None, **kwargs) -> EvalReport:
    config = config or EvalConfig(policies=("g=1",), max_clicks=1, gallery_size=0)
    return evaluate(generator, SceneDataset(N, SEED, SIZE), config, generator=generator, progress=False, **kwargs)


def test_the_default_is_the_official_whole_image_protocol():
    official = EvalConfig().whole_image_settings
    assert official == WholeImageSettings()
    assert (official.points_per_side, official.points_per_batch, official.use_m2m) == (64, 128, True)
    assert official.pred_iou_thresh is None  # 0.65 below g 0.5, else 0.5
    assert (official.stability_score_thresh, official.stability_score_offset) == (0.7, 0.7)
    assert (official.box_nms_thresh, official.mask_threshold, official.min_mask_region_area) == (0.7, -1.0, 0)
    assert EvalConfig().sam2_thresholds == (-1.0, 0.0)


@pytest.mark.parametrize("change", [
    {"points_per_side": 16}, {"points_per_side": 32}, {"use_m2m": False}, {"points_per_batch": 64},
    {"pred_iou_thresh": 0.5}, {"stability_score_thresh": 0.9}, {"box_nms_thresh": 0.5},
    {"mask_threshold": 0.0}, {"min_mask_region_area": 100}, {"generator": "sam2-automatic"},
])
def test_every_whole_image_setting_changes_the_protocol_hash(change):
    base = EvalConfig()
    changed = EvalConfig(whole_image_settings=WholeImageSettings(**change))
    assert changed.protocol_hash() != base.protocol_hash()
    assert EvalConfig(sam2_thresholds=(0.0, 0.0)).protocol_hash() != base.protocol_hash()


def test_the_report_records_what_the_generator_ran_with():
    scenes = list(iter_scenes(N, SEED, SIZE))
    grid16 = _run(ReportingGenerator(scenes, points_per_side=16, use_m2m=True))
    grid64 = _run(ReportingGenerator(scenes, points_per_side=64, use_m2m=True))
    no_m2m = _run(ReportingGenerator(scenes, points_per_side=64, use_m2m=False))
    assert grid16.protocol["whole_image_settings"]["points_per_side"] == 16
    assert no_m2m.protocol["whole_image_settings"]["use_m2m"] is False
    hashes = {r.protocol["protocol_hash"] for r in (grid16, grid64, no_m2m)}
    assert len(hashes) == 3  # reports at different settings never compare as the same protocol
    # the config's settings stand in for a generator that reports none
    silent = _run(SceneTruthPredictor(scenes))
    assert silent.protocol["whole_image_settings"] == asdict(WholeImageSettings())
    assert silent.protocol["protocol_hash"] == grid64.protocol["protocol_hash"]
    assert "64x64 grid, m2m on" in to_markdown(grid64) and "16x16 grid" in to_markdown(grid16)
    assert EvalReport.from_json(grid16.to_json()).protocol == grid16.protocol


def test_settings_absent_from_runs_that_do_not_use_them():
    scenes = list(iter_scenes(N, SEED, SIZE))
    predictor = SceneTruthPredictor(scenes)
    config = EvalConfig(policies=("g=1",), max_clicks=1, gallery_size=0)
    report = evaluate(predictor, SceneDataset(N, SEED, SIZE), config, progress=False)
    assert report.protocol["whole_image_settings"] is None and report.protocol["sam2_thresholds"] is None
    # interactive-only runs compare whatever grid the config names
    assert report.protocol["protocol_hash"] == config.as_run().protocol_hash() == EvalConfig(
        policies=("g=1",), max_clicks=1, gallery_size=0,
        whole_image_settings=WholeImageSettings(points_per_side=8)).as_run().protocol_hash()


def test_baseline_thresholds_are_recorded():
    scenes = list(iter_scenes(N, SEED, SIZE))
    predictor = SceneTruthPredictor(scenes)
    predictor.single_threshold, predictor.multimask_threshold = -1.0, 0.0
    config = EvalConfig(policies=("sam2-single",), max_clicks=1, gallery_size=0, whole_image=False)
    report = evaluate(None, SceneDataset(N, SEED, SIZE), config, baseline=predictor, progress=False)
    assert report.protocol["sam2_thresholds"] == [-1.0, 0.0]
    predictor.single_threshold = 0.0
    again = evaluate(None, SceneDataset(N, SEED, SIZE), config, baseline=predictor, progress=False)
    assert again.protocol["sam2_thresholds"] == [0.0, 0.0]
    assert again.protocol["protocol_hash"] != report.protocol["protocol_hash"]
    assert "logits > 0 (single mask)" in to_markdown(again)


def test_bad_settings_are_clear_errors():
    with pytest.raises(InputError, match="positive"):
        WholeImageSettings(points_per_side=0)
    with pytest.raises(InputError, match="box_nms_thresh"):
        WholeImageSettings(box_nms_thresh=1.5)
