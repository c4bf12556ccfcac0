"""The input walker survives hostile folders: symlink loops and non-UTF-8 names are skipped and counted."""

import json
import logging
import os

from unsamv2.pipeline import manifest as mf


def _images(root, names=("a.png", "sub/b.jpg")):
    for rel in names:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_symlink_loops_are_skipped_and_counted(tmp_path, caplog):
    root = tmp_path / "in"
    _images(root)
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)  # sub/loop -> in (an ancestor)
    (root / "self").symlink_to(root / "self")  # a link to itself: ELOOP when followed
    (root / "alias").symlink_to(root / "sub", target_is_directory=True)  # an alias, not a loop: listed
    with caplog.at_level(logging.WARNING, logger="unsamv2.pipeline.manifest"):
        info = mf.plan_manifest(str(root), str(tmp_path / "out"), shard_size=10)
    keys = sorted(r["image_uri"][len(str(root)) + 1:] for r in mf.read_shard_entries(str(tmp_path / "out"), 0).to_pylist())
    assert keys == ["a.png", "alias/b.jpg", "sub/b.jpg"]
    assert info.skipped_symlink_loops == 3 and info.skipped_non_images == 0  # sub/loop, alias/loop, self
    assert "symlink loop" in caplog.text and "sub/loop" in caplog.text and "3 symlink loops" in caplog.text


def test_non_utf8_names_are_skipped_and_counted(tmp_path, caplog):
    root = tmp_path / "in"
    _images(root)
    bad = os.path.join(os.fsencode(root), b"bad\xff.png")
    with open(bad, "wb") as f:
        f.write(b"x")
    os.makedirs(os.path.join(os.fsencode(root), b"dir\xfe", b"c.png"))
    with caplog.at_level(logging.WARNING, logger="unsamv2.pipeline.manifest"):
        info = mf.plan_manifest(str(root), str(tmp_path / "out"), shard_size=10)
    assert info.num_images == 2 and info.skipped_undecodable_names == 2
    meta = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert meta["skipped_undecodable_names"] == 2 and meta["skipped_symlink_loops"] == 0
    assert "not valid UTF-8" in caplog.text and "skipped 2 names" in caplog.text


def test_old_manifest_json_without_the_new_counts_still_loads(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"input_uri": "/in", "shard_size": 2, "num_images": 3, "num_shards": 2, "skipped_non_images": 1}))
    info = mf.load_manifest_info(str(tmp_path))
    assert info.num_images == 3 and info.skipped_symlink_loops == 0 and info.skipped_undecodable_names == 0


def test_an_unreadable_folder_is_skipped_and_counted(tmp_path, monkeypatch):
    root = tmp_path / "in"
    _images(root, ("a.png", "sub/b.jpg", "locked/c.png"))
    real_scandir = os.scandir

    def scandir(path):  # chmod 0 does not stop root, so fail the listing the way EACCES would
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(mf.os, "scandir", scandir)
    info = mf.plan_manifest(str(root), str(tmp_path / "out"), shard_size=10)
    assert info.num_images == 2 and info.skipped_unreadable_dirs == 1


def test_the_mine_summary_reports_skipped_paths(tmp_path, capsys):
    """The walker's skips reach the user: counted in summary.json and printed by ``unsamv2 mine``."""
    import json

    import numpy as np
    from PIL import Image

    from unsamv2.cli import main

    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(inputs / "ok.png")
    os.symlink(inputs, inputs / "loop")
    assert main(["mine", str(inputs), str(tmp_path / "out")]) == 0
    assert "skipped input paths: symlink_loops=1" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["skipped_paths"] == {"symlink_loops": 1}
