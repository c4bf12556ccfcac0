"""COCO output of the procedural scenes: loadable by pycocotools, exact masks, hierarchy ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from unsamv2.data import storage
from unsamv2.errors import StorageError
from unsamv2.scenes import iter_scenes, scene_to_coco, write_scene_dataset


def test_written_dataset_loads_in_pycocotools_with_exact_masks(tmp_path: Path):
    seen = []
    uri = write_scene_dataset(str(tmp_path), n=3, seed=4, size=128, on_scene=lambda i, s: seen.append(i))
    assert uri == str(tmp_path / "annotations.json") and seen == [0, 1, 2]
    coco = COCO(uri)
    scenes = list(iter_scenes(3, seed=4, size=128))
    assert sorted(coco.getImgIds()) == [1, 2, 3]
    assert coco.loadCats(coco.getCatIds()) == [{"id": 1, "name": "object"}]
    for image_id, scene in zip([1, 2, 3], scenes, strict=True):
        info = coco.loadImgs(image_id)[0]
        assert info["file_name"] == f"images/scene_{image_id - 1:05d}.png"
        assert (info["height"], info["width"]) == (128, 128) and info["scene_seed"] == scene.seed
        pixels = np.asarray(Image.open(tmp_path / info["file_name"]))
        assert np.array_equal(pixels, scene.image), "PNG is lossless"
        anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=[image_id])), key=lambda a: a["id"])
        assert len(anns) == len(scene.nodes)
        for ann, node in zip(anns, scene.nodes, strict=True):
            assert np.array_equal(coco.annToMask(ann).astype(bool), node.mask)
            assert ann["area"] == node.area and ann["iscrowd"] == 0 and ann["category_id"] == 1
            assert ann["level"] == node.level and ann["granularity"] == pytest.approx(node.granularity)
            ys, xs = np.nonzero(node.mask)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_annotation_ids_are_unique_and_parents_point_inside_the_same_image(tmp_path: Path):
    uri = write_scene_dataset(str(tmp_path), n=3, seed=9, size=96)
    data = json.loads(Path(uri).read_text())
    by_id = {a["id"]: a for a in data["annotations"]}
    assert len(by_id) == len(data["annotations"])
    for ann in data["annotations"]:
        root = by_id[ann["object_id"]]
        assert root["parent_id"] is None and root["level"] == 0 and root["image_id"] == ann["image_id"]
        if ann["parent_id"] is None:
            assert ann["level"] == 0 and ann["object_id"] == ann["id"]
        else:
            parent = by_id[ann["parent_id"]]
            assert parent["image_id"] == ann["image_id"] and parent["level"] == ann["level"] - 1
            assert parent["object_id"] == ann["object_id"]
    info = data["info"]
    assert (info["seed"], info["size"], info["n"]) == (9, 96, 3) and info["version"]
    assert info["config"]["levels"] == 4


def test_scene_to_coco_offsets_ids():
    scene = next(iter_scenes(1, seed=2, size=96))
    image, anns = scene_to_coco(scene, image_id=7, first_annotation_id=100, file_name="x.png")
    assert image["id"] == 7 and image["file_name"] == "x.png"
    assert [a["id"] for a in anns] == list(range(100, 100 + len(scene.nodes)))
    assert all(a["image_id"] == 7 for a in anns)


def test_dataset_on_a_non_local_filesystem():
    """``out_dir`` goes through unsamv2.data.storage (fsspec), here its in-memory filesystem."""
    out = "memory://scenes-test"
    uri = write_scene_dataset(out, n=2, seed=1, size=64)
    coco = json.loads(storage.read_text(uri))
    assert len(coco["images"]) == 2
    png = storage.read_bytes(storage.join(out, "images", "scene_00001.png"))
    assert png.startswith(b"\x89PNG")


@pytest.mark.integration
def test_dataset_on_s3(s3_bucket: str):
    uri = write_scene_dataset(f"{s3_bucket}/scenes", n=2, seed=1, size=64)
    assert uri == f"{s3_bucket}/scenes/annotations.json"
    assert len(json.loads(storage.read_text(uri))["images"]) == 2
    assert storage.exists(f"{s3_bucket}/scenes/images/scene_00000.png")


def test_unwritable_output_is_a_storage_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="writable"):
        write_scene_dataset(str(blocker / "out"), n=1, seed=0, size=64)
