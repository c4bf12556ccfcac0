"""Dataset loading: a tiny COCO folder written by the test, and the procedural scenes."""

import json

import numpy as np
import pytest
from PIL import Image

from unsamv2.data.rle import encode_rle, to_coco_segmentation
from unsamv2.errors import InputError
from unsamv2.eval.datasets import CocoDataset, DatasetSpec, SceneDataset, target_iou_for


def rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def write_tiny_coco(root, kind=None):
    h, w = 16, 24
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / name)
    rle = lambda m: to_coco_segmentation(encode_rle(m), h, w)  # noqa: E731
    coco = {
        "images": [
            {"id": 7, "file_name": "images/b.jpg", "height": h, "width": w},
            {"id": 0, "file_name": "images/a.png", "height": h, "width": w,
             "ignore_segmentation": rle(rect(h, w, 0, 16, 20, 24))},
        ],
        "annotations": [
            {"id": 0, "image_id": 0, "segmentation": [[2, 2, 10, 2, 10, 10, 2, 10]], "category_id": 3},
            {"id": 1, "image_id": 0, "segmentation": rle(rect(h, w, 12, 16, 0, 8)), "iscrowd": 1},
            {"id": 2, "image_id": 0, "segmentation": rle(rect(h, w, 0, 4, 12, 24)), "ignore": 1},
            {"id": 3, "image_id": 7, "segmentation": rle(rect(h, w, 4, 12, 4, 20)), "granularity": 0.5, "level": 1},
            {"id": 4, "image_id": 0, "segmentation": rle(rect(h, w, 5, 9, 20, 24))},  # all ignored
        ],
    }
    if kind:
        coco["info"] = {"unsamv2_kind": kind}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root / "annotations.json"


def test_coco_loader_reads_objects_ignore_and_ar_annotations(tmp_path):
    ds = CocoDataset(str(write_tiny_coco(tmp_path / "tiny")))
    assert ds.name == "tiny" and ds.kind == "object" and len(ds) == 2 and len(ds.version) == 16
    first, second = list(ds)
    assert first.image_id == 0 and first.image.shape == (16, 24, 3) and first.image.dtype == np.uint8
    assert first.ids == [0]  # crowd, ignore and fully-ignored annotations are not objects
    assert first.masks.shape == (1, 16, 24) and first.masks[0].sum() == 64  # polygon 2..10 -> 8x8
    expected_ignore = rect(16, 24, 0, 16, 20, 24) | rect(16, 24, 12, 16, 0, 8) | rect(16, 24, 0, 4, 12, 24)
    assert np.array_equal(first.ignore, expected_ignore)
    assert [a["iscrowd"] for a in first.annotations] == [0, 1, 1, 0]
    assert second.image_id == 7 and second.ignore is None
    assert second.granularity == [0.5] and second.level == [1]


def test_kind_from_the_file_or_the_spec(tmp_path):
    uri = str(write_tiny_coco(tmp_path / "parts", kind="part"))
    assert CocoDataset(uri).kind == "part"
    assert target_iou_for(CocoDataset(uri).kind) == 0.85
    ds = DatasetSpec("x", uri, kind="object", max_images=1, levels=(1,)).open()
    assert ds.kind == "object" and len(ds) == 1 and list(ds)[0].ids == []
    with pytest.raises(InputError):
        CocoDataset(uri, kind="stuff")


def test_bad_files_raise_input_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError):
        CocoDataset(str(bad))
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(InputError):
        CocoDataset(str(bad))
    uri = write_tiny_coco(tmp_path / "t")
    coco = json.loads(uri.read_text())
    coco["images"][0]["height"] = 99
    uri.write_text(json.dumps(coco))
    with pytest.raises(InputError):
        list(CocoDataset(str(uri)))


def test_scene_dataset_matches_the_written_coco_dataset(tmp_path):
    from unsamv2.scenes import write_scene_dataset

    objects = SceneDataset(n=2, seed=3, size=96, kind="object")
    parts = SceneDataset(n=2, seed=3, size=96, kind="part")
    in_memory = list(objects)
    assert all(set(s.level) == {0} for s in in_memory)
    assert all(lvl >= 1 for s in parts for lvl in s.level)
    assert all(s.masks.sum(axis=(1, 2)).min() >= 64 for s in in_memory)
    uri = write_scene_dataset(str(tmp_path / "scenes"), n=2, seed=3, size=96)
    on_disk = list(CocoDataset(uri, levels=(0,), min_area=64))
    for a, b in zip(in_memory, on_disk, strict=True):
        assert a.ids == b.ids and np.array_equal(a.masks, b.masks) and np.array_equal(a.image, b.image)
        assert len(a.annotations) == len(b.annotations)
    spec = DatasetSpec("scenes", "scenes:2:3:96", kind="part").open()
    assert spec.kind == "part" and len(spec) == 2 and spec.version.endswith("n2-seed3-size96")
    with pytest.raises(InputError):
        DatasetSpec("s", "scenes:x").open()
