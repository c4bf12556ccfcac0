"""``unsamv2 scenes`` end to end, its argument errors, the sample photos and the overview picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import unsamv2.cli as cli
from unsamv2.scenes import SAMPLE_PHOTO_NAMES, render_overview, sample_photos, write_sample_photos


@pytest.fixture
def scenes_cli(monkeypatch):
    """``unsamv2.cli.main`` with only this command registered (other commands are tested elsewhere)."""
    assert "unsamv2.cli.scenes" in cli._COMMAND_MODULES
    monkeypatch.setattr(cli, "_COMMAND_MODULES", ("unsamv2.cli.scenes",))
    return cli.main


def test_cli_writes_scenes_and_photos(scenes_cli, tmp_path: Path, capsys):
    out = tmp_path / "out"
    status = scenes_cli(["scenes", "--out", str(out), "--n", "2", "--seed", "3", "--size", "96", "--photos"])
    assert status == 0
    captured = capsys.readouterr()
    assert "wrote 2 scenes" in captured.out and str(out / "annotations.json") in captured.out
    assert "5 sample photos" in captured.out
    assert "scenes: 100%" in captured.err  # tqdm progress on stderr
    coco = json.loads((out / "annotations.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["images/scene_00000.png", "images/scene_00001.png"]
    assert sorted(p.name for p in (out / "photos").iterdir()) == sorted(f"{n}.jpg" for n in SAMPLE_PHOTO_NAMES)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--n", "0"], "--n must be at least 1"),
        (["--size", "16"], "--size must be from 64"),
        (["--seed", "-2"], "--seed must be a non-negative integer"),
    ],
)
def test_cli_bad_arguments_give_one_line(scenes_cli, tmp_path: Path, capsys, argv, needle):
    status = scenes_cli(["scenes", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith("unsamv2: error: ") and needle in err[-1]
    assert not (tmp_path / "o").exists()


def test_cli_unwritable_output(scenes_cli, tmp_path: Path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status = scenes_cli(["scenes", "--out", str(blocker / "o"), "--n", "1", "--size", "64"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and "writable" in last and "Traceback" not in last


def test_sample_photos_load_offline():
    photos = sample_photos()
    assert tuple(photos) == SAMPLE_PHOTO_NAMES
    for image in photos.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert min(image.shape[:2]) >= 256 and image.std() > 10
    assert photos["astronaut"].shape == (512, 512, 3)


def test_write_sample_photos_as_jpeg(tmp_path: Path):
    paths = write_sample_photos(str(tmp_path / "photos"))
    assert len(paths) == len(SAMPLE_PHOTO_NAMES)
    originals = sample_photos(["coffee"])
    decoded = np.asarray(Image.open(tmp_path / "photos" / "coffee.jpg"))
    assert decoded.shape == originals["coffee"].shape
    assert np.abs(decoded.astype(int) - originals["coffee"]).mean() < 6  # JPEG, close to the original


def test_unknown_photo_name_is_an_input_error():
    from unsamv2.errors import InputError

    with pytest.raises(InputError, match="choose from"):
        sample_photos(["lena"])


def test_render_overview_is_a_small_png(tmp_path: Path):
    out = render_overview(str(tmp_path / "overview.png"), seeds=(0, 1), size=96)
    image = Image.open(out)
    assert image.format == "PNG" and image.size[0] > image.size[1] > 100
    assert Path(out).stat().st_size < 500_000
