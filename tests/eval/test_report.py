"""Report rendering: files written, HTML self-contained with every plot, Markdown tables."""

import base64
import io
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
from eval.fakes import SceneTruthPredictor
from PIL import Image

from unsamv2.errors import SchemaError
from unsamv2.eval.datasets import SceneDataset
from unsamv2.eval.output import write_report
from unsamv2.eval.plots import PLOTS, render_plots
from unsamv2.eval.report import EvalReport, to_markdown
from unsamv2.eval.runner import EvalConfig, evaluate
from unsamv2.scenes import iter_scenes


@pytest.fixture(scope="module")
def report():
    scenes = list(iter_scenes(2, 1, 96))
    predictor = SceneTruthPredictor(scenes)
    cfg = EvalConfig(policies=("oracle", "g=0.5", "sam2-best3"), max_clicks=4, gallery_size=1)
    return evaluate(predictor, [SceneDataset(2, 1, 96), SceneDataset(2, 1, 96, kind="part")], cfg,
                    generator=predictor, model="perfect", progress=False)


def test_all_plots_render_as_png(report):
    plots = render_plots(report)
    assert list(plots) == list(PLOTS)
    for png in plots.values():
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.width >= 400 and im.height >= 250


def test_write_report_writes_json_markdown_self_contained_html_and_objects(report, tmp_path):
    out = tmp_path / "run"
    written = write_report(report, str(out))
    assert {"json", "markdown", "html", "objects"} <= set(written)
    assert EvalReport.from_json((out / "report.json").read_text()) == report
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(PLOTS) + len(report.gallery)
    assert all(base64.b64decode(b).startswith(b"\x89PNG") for b in images)
    assert "src=\"http" not in html and "<script" not in html
    for name in PLOTS:
        assert f"id='plot-{name}'" in html and (out / "plots" / f"{name}.png").exists()
    md = (out / "report.md").read_text()
    assert "| policy | NoC80 | NoC85 | NoC90 | NoF90 | 1-IoU (%)" in md
    assert "| AR@1 (%) | AR@10 (%) | AR@100 (%) | AR@1000 (%)" in md
    objects = pq.read_table(out / "objects.parquet")
    assert objects.num_rows == len(report.object_rows) > 0


def test_markdown_without_whole_image_results_has_no_ar_table():
    scenes = list(iter_scenes(1, 2, 64))
    rep = evaluate(SceneTruthPredictor(scenes), SceneDataset(1, 2, 64),
                   EvalConfig(max_clicks=2, gallery_size=0), progress=False)
    md = to_markdown(rep, "**Regression check: pass**")
    assert "AR@" not in md and "Regression check: pass" in md
    plots = render_plots(rep)
    assert "ar_by_granularity" not in plots and "iou_vs_clicks" in plots


def test_unknown_schema_version_is_refused(report):
    doc = report.to_dict()
    doc["schema_version"] = 99
    with pytest.raises(SchemaError):
        EvalReport.from_dict(doc)


def test_click_rule_figure_marks_the_rule_s_click():
    from unsamv2.eval.gallery import click_rule_figure

    image = np.zeros((40, 50, 3), np.uint8)
    gt = np.zeros((40, 50), bool)
    gt[5:30, 5:30] = True
    pred = np.zeros_like(gt)
    pred[5:30, 5:12] = True
    png = click_rule_figure(image, gt, pred)
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.width > im.height
