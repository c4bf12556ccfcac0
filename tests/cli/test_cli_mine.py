"""``unsamv2 mine`` then ``unsamv2 stats`` on a small folder, as a user would run them."""

import json
import subprocess
import sys

import pytest
from support.scene_images import write_scene_pngs


@pytest.mark.integration
def test_mine_then_stats(tmp_path):
    folder = write_scene_pngs(tmp_path / "imgs", 2, seed=3, size=128)
    (folder / "zero.jpg").write_bytes(b"")
    out = tmp_path / "table"
    mine = subprocess.run([sys.executable, "-m", "unsamv2", "mine", str(folder), str(out), "--shard-size", "2"],
                          capture_output=True, text=True, timeout=600)
    assert mine.returncode == 0, mine.stderr
    assert "mined 3 images (2 ok" in mine.stdout and "errors: empty=1" in mine.stdout
    assert "shards" in mine.stderr  # the progress bar
    stats = subprocess.run([sys.executable, "-m", "unsamv2", "stats", str(out)], capture_output=True, text=True, timeout=300)
    assert stats.returncode == 0, stats.stderr
    data = json.loads((out / "stats" / "stats.json").read_text())
    assert data["images"] == 3 and data["ok_images"] == 2 and data["errors"] == {"empty": 1}
