"""``unsamv2 eval`` from a shell: the latest checkpoint of a registry, a report, the history."""

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_eval_cli_writes_a_report_and_history(tmp_path):
    from support.train_data import write_scene_table

    from unsamv2.train import TrainConfig, train

    data = write_scene_table(str(tmp_path / "data"), n=2, size=96)
    train(TrainConfig(table_uri=data["table"], output_uri=str(tmp_path / "registry" / "run"), use_split=False,
                      trainable="full", max_steps=1, checkpoint_every=1))
    cmd = [sys.executable, "-m", "unsamv2", "eval", "--registry", str(tmp_path / "registry"), "--out",
           str(tmp_path / "report"), "--store", str(tmp_path / "store"), "--scenes", "scenes:1:1000:96",
           "--policy", "g=1", "--max-clicks", "2", "--fail-on-regression"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "report" in out.stdout and "nothing to compare" in out.stdout
    assert os.path.exists(tmp_path / "report" / "report.html")
    assert os.path.exists(tmp_path / "store" / "history.parquet")
    missing = subprocess.run([sys.executable, "-m", "unsamv2", "eval", "--registry", str(tmp_path / "nope"),
                              "--out", str(tmp_path / "r2")], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_eval_the_shipped_unsamv2_against_its_base(tmp_path):
    """``unsamv2 eval shipped``: the shipped UnSAMv2 with the base's SAM-2 rows beside it, so a
    new adapter's report can be compared with the shipped one (BENCHMARKS.md has the 32-scene
    comparison; on this one scene the base's single mask scores 0.41, the oracle g 0.30)."""
    import json

    from unsamv2.cli import main

    assert main(["eval", "shipped", "--out", str(tmp_path / "report"), "--scenes", "scenes:1:1000:256",
                 "--policy", "oracle", "--policy", "sam2-single", "--max-clicks", "1"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["model"] == "unsamv2-base-shipped"
    metrics = {(d["name"], p["policy"]): p["iou1"] for d in report["datasets"] for p in d["interactive"]}
    oracle, single = metrics[("scenes-objects", "oracle")], metrics[("scenes-objects", "sam2-single")]
    assert 0 < oracle <= 1 and 0 < single <= 1  # both rows measured on real masks (not a page of zeros)
