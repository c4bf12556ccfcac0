"""Hostile names in the files the converters read never write or delete outside the output folder."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unsamv2.errors import InputError
from unsamv2.eval.convert import convert_coco_json, place_image
from unsamv2.eval.convert_sources import convert_sa1b
from unsamv2.eval.datasets import CocoDataset

H, W = 8, 10


def save_image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)


def snapshot(root: Path, skip: Path) -> dict[str, str]:
    """Every entry under ``root`` except under ``skip``: relative path -> content hash / link target."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            key = str(p.relative_to(root))
            if p.is_symlink():
                seen[key] = "link:" + os.readlink(p)
            elif p.is_file():
                seen[key] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                seen[key] = "dir"
    return seen


def coco_with(tmp_path: Path, file_name: str) -> Path:
    doc = {"images": [{"id": 1, "file_name": file_name, "height": H, "width": W}],
           "annotations": [{"id": 1, "image_id": 1, "segmentation": [[1, 1, 6, 1, 6, 6]]}]}
    path = tmp_path / "ds" / "ann.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def world(tmp_path):
    """A dataset (ds/images/a.png), a precious file outside everything (victim/f.png)."""
    save_image(tmp_path / "ds" / "images" / "a.png")
    save_image(tmp_path / "victim" / "f.png", seed=1)
    return tmp_path


@pytest.mark.parametrize("mode", ["copy", "symlink"])
@pytest.mark.parametrize("name", ["ABS_SOURCE", "ABS_VICTIM", "../../victim/f.png", "../../../victim/f.png",
                                  "a/../../victim/f.png", "..\\..\\victim\\f.png"])
def test_hostile_file_names_touch_nothing_outside_out(world, name, mode):
    name = {"ABS_SOURCE": str(world / "ds" / "images" / "a.png"),
            "ABS_VICTIM": str(world / "victim" / "f.png")}.get(name, name)
    out = world / "out"
    before = snapshot(world, out)
    with pytest.raises(InputError, match="file_name of image 1"):
        convert_coco_json(coco_with(world, name), world / "ds" / "images", out, mode=mode)
    after = snapshot(world, out)
    assert after == {**before, "ds/ann.json": after["ds/ann.json"]}
    assert not (out / "annotations.json").exists()


def test_one_bad_name_stops_before_any_image_is_placed(world):
    doc = {"images": [{"id": 1, "file_name": "a.png", "height": H, "width": W},
                      {"id": 2, "file_name": "../../victim/f.png", "height": H, "width": W}], "annotations": []}
    (world / "two.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="image 2"):
        convert_coco_json(world / "two.json", world / "ds" / "images", world / "out")
    assert not (world / "out").exists()


def test_place_image_never_deletes_its_source(world):
    """Converting a dataset into its own folder: out/images/a.png IS the source."""
    src = world / "ds" / "images" / "a.png"
    data = src.read_bytes()
    for mode in ("copy", "symlink"):
        assert place_image(src, world / "ds", "a.png", mode) == "images/a.png"
        assert not src.is_symlink() and src.read_bytes() == data


def test_place_image_replaces_a_link_but_never_writes_through_it(world):
    out = world / "out"
    (out / "images").mkdir(parents=True)
    victim = world / "victim" / "f.png"
    data = victim.read_bytes()
    (out / "images" / "a.png").symlink_to(victim)  # left by a hostile or earlier --symlink run
    place_image(world / "ds" / "images" / "a.png", out, "a.png", "copy")
    assert victim.read_bytes() == data and not (out / "images" / "a.png").is_symlink()
    (out / "images" / "sub").symlink_to(world / "victim", target_is_directory=True)
    with pytest.raises(InputError, match="through a symlink"):
        place_image(world / "ds" / "images" / "a.png", out, "sub/f.png", "copy")
    assert victim.read_bytes() == data


def test_rerunning_a_symlink_conversion_works(world):
    ann = coco_with(world, "a.png")
    for _ in range(2):
        convert_coco_json(ann, world / "ds" / "images", world / "out", mode="symlink")
    assert (world / "out" / "images" / "a.png").is_symlink()
    assert (world / "ds" / "images" / "a.png").is_file() and not (world / "ds" / "images" / "a.png").is_symlink()


def test_sa1b_file_name_cannot_escape(world):
    src = world / "sa"
    src.mkdir()
    (src / "sa_1.json").write_text(json.dumps({"image": {"file_name": "../victim/f.png"}, "annotations": []}))
    before = snapshot(world, world / "out")
    with pytest.raises(InputError, match="'..'"):
        convert_sa1b(src, world / "out")
    assert snapshot(world, world / "out") == before


def test_the_loader_refuses_names_that_escape_the_image_root(world):
    """eval.datasets joins file_name under the image root for reading: no absolute names, no '..'."""
    for name in (str(world / "victim" / "f.png"), "../../victim/f.png"):
        with pytest.raises(InputError, match="file_name of image 1"):
            list(CocoDataset(str(coco_with(world, name)), image_root=str(world / "ds" / "images")))
    (sample,) = CocoDataset(str(coco_with(world, "a.png")), image_root=str(world / "ds" / "images"))
    assert sample.image.shape == (H, W, 3)


@pytest.mark.parametrize("script", ["sbd", "pascal_part"])
@pytest.mark.integration
def test_split_list_names_cannot_escape(world, script):
    """SBD / PASCAL-Part read image names from a split list: '../..' there is refused, exit status 2."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    src = world / "split"
    src.mkdir()
    (src / "val.txt").write_text("../victim/f\n")
    before = snapshot(world, world / "out")
    cmd = [sys.executable, str(repo / "scripts" / "convert" / f"{script}.py"), str(src), str(world / "out"),
           "--split", "val"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "'..'" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert snapshot(world, world / "out") == before and not (world / "out").exists()


def test_converting_into_the_input_folder_never_overwrites_the_input_file(world):
    ann = world / "ds" / "annotations.json"
    ann.write_text(coco_with(world, "images/a.png").read_text())
    before = snapshot(world, world / "nothing")
    with pytest.raises(InputError, match="overwrite its own input"):
        convert_coco_json(ann, world / "ds", world / "ds")
    assert snapshot(world, world / "nothing") == before
