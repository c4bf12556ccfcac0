"""Dataset converters on synthetic copies of the source layouts, read back with CocoDataset."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from unsamv2.data.rle import encode_rle, to_coco_segmentation
from unsamv2.errors import InputError
from unsamv2.eval.convert import (
    CocoBuilder,
    convert_coco_json,
    convert_paired_folders,
    instance_masks,
    nonzero_mask,
    threshold_mask,
)
from unsamv2.eval.convert_sources import (
    ade20k_instances,
    convert_sa1b,
    pascal_part_masks,
    sbd_instances,
)
from unsamv2.eval.datasets import CocoDataset

REPO = Path(__file__).resolve().parents[2]
H, W = 20, 30


def save_image(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)


def grabcut_layout(root):
    """Two images with 0/128/255 masks, one extra image without a mask."""
    for i in range(2):
        save_image(root / "data_GT" / f"im{i}.jpg", i)
        m = np.zeros((H, W), np.uint8)
        m[5:15, 5 + i:20] = 255
        m[4, 5:20] = 128  # unknown band
        (root / "boundary_GT").mkdir(exist_ok=True)
        Image.fromarray(m).save(root / "boundary_GT" / f"im{i}.bmp")
    save_image(root / "data_GT" / "unlabeled.jpg", 9)
    return root


def test_mask_rules():
    v = np.array([[0, 128, 129, 255]])
    (obj,), ignore = threshold_mask(v)
    assert obj[1].tolist() == [[False, False, True, True]] and ignore.tolist() == [[False, True, False, False]]
    (obj,), ignore = nonzero_mask(np.array([[0, 1, 7]]))
    assert obj[1].tolist() == [[False, True, True]] and ignore is None
    objects, ignore = instance_masks(np.array([[0, 1, 2, 255], [2, 2, 0, 0]]))
    assert [i for i, _ in objects] == [1, 2] and objects[1][1].sum() == 3 and ignore.sum() == 1


def test_paired_folders_round_trip_through_the_loader(tmp_path):
    src = grabcut_layout(tmp_path / "GrabCut")
    out = tmp_path / "out"
    builder = convert_paired_folders(src / "data_GT", src / "boundary_GT", out, decode=threshold_mask)
    assert builder.summary().startswith("2 images, 2 objects")
    samples = list(CocoDataset(str(out / "annotations.json")))
    assert len(samples) == 2 and samples[0].masks.shape == (1, H, W)
    assert samples[0].masks[0].sum() == 10 * 15 and samples[1].masks[0].sum() == 10 * 14
    assert samples[0].ignore.sum() == 15 and samples[0].image.shape == (H, W, 3)
    assert (out / "images" / "im0.jpg").is_file()
    (src / "boundary_GT" / "ghost.bmp").write_bytes((src / "boundary_GT" / "im0.bmp").read_bytes())
    with pytest.raises(InputError):
        convert_paired_folders(src / "data_GT", src / "boundary_GT", out, decode=threshold_mask)


@pytest.mark.integration
def test_grabcut_script_end_to_end(tmp_path):
    src = grabcut_layout(tmp_path / "GrabCut")
    out = tmp_path / "gc"
    cmd = [sys.executable, str(REPO / "scripts" / "convert" / "grabcut.py"), str(src), str(out), "--symlink"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    assert "2 images, 2 objects" in done.stdout and (out / "images" / "im1.jpg").is_symlink()
    bad = subprocess.run([*cmd[:2], str(tmp_path / "missing"), str(out)], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_coco_json_is_made_class_agnostic_with_a_file_name_rule(tmp_path):
    save_image(tmp_path / "coco" / "val2017" / "000001.jpg")
    m = np.zeros((H, W), bool)
    m[2:8, 2:8] = True
    src = {"images": [{"id": 42, "height": H, "width": W, "coco_url": "http://x/val2017/000001.jpg"}],
           "annotations": [{"id": 1, "image_id": 42, "category_id": 5, "segmentation": [[10, 10, 20, 10, 20, 18]]},
                           {"id": 2, "image_id": 42, "category_id": 6, "iscrowd": 1,
                            "segmentation": to_coco_segmentation(encode_rle(m), H, W)}]}
    (tmp_path / "lvis.json").write_text(json.dumps(src))
    out = tmp_path / "out"
    convert_coco_json(tmp_path / "lvis.json", tmp_path / "coco", out, kind="part",
                      file_name_of=lambda e: "/".join(e["coco_url"].split("/")[-2:]))
    doc = json.loads((out / "annotations.json").read_text())
    assert doc["info"]["unsamv2_kind"] == "part" and doc["categories"] == [{"id": 1, "name": "object"}]
    assert [a["source_category"] for a in doc["annotations"]] == [5, 6]
    (sample,) = CocoDataset(str(out / "annotations.json"))
    assert sample.ids == [1] and sample.ignore.sum() == 36


def test_sbd_and_pascal_part_mat_files(tmp_path):
    seg = np.zeros((H, W), np.uint8)
    seg[1:5, 1:5], seg[6:9, 6:9], seg[0, :] = 1, 2, 255
    savemat(tmp_path / "inst.mat", {"GTinst": {"Segmentation": seg, "Boundaries": np.zeros(1)}})
    objects, ignore = sbd_instances(tmp_path / "inst.mat")
    assert [i for i, _ in objects] == [1, 2] and ignore.sum() == W
    head, body = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
    head[0:3, 0:3], body[3:9, 0:5] = 1, 1
    parts = np.empty(2, dtype=object)
    parts[0], parts[1] = {"part_name": "head", "mask": head}, {"part_name": "torso", "mask": body}
    obj = {"class": "person", "class_ind": 15, "mask": head | body, "parts": parts}
    savemat(tmp_path / "part.mat", {"anno": {"imname": "x", "objects": np.array([obj], dtype=object)}})
    masks = pascal_part_masks(tmp_path / "part.mat", include_objects=True)
    assert [n for n, _ in masks] == ["person", "person/head", "person/torso"]
    assert [int(m.sum()) for _, m in masks] == [39, 9, 30]


def test_ade20k_instances_and_sa1b(tmp_path):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[0:5, 0:5] = (12, 1, 0)
    rgb[5:10, 0:5] = (12, 2, 0)
    rgb[10:15, 0:5] = (7, 0, 0)  # stuff without instance id: not an object
    Image.fromarray(rgb).save(tmp_path / "inst.png")
    assert [(k // 256, k % 256) for k, _ in ade20k_instances(tmp_path / "inst.png")] == [(12, 1), (12, 2)]
    src = tmp_path / "sa"
    save_image(src / "sa_1.jpg")
    anns = []
    for k in range(5):
        m = np.zeros((H, W), bool)
        m[k:k + 3, :] = True
        anns.append({"id": k, "segmentation": to_coco_segmentation(encode_rle(m), H, W)})
    (src / "sa_1.json").write_text(json.dumps({"image": {"image_id": 1, "file_name": "sa_1.jpg"}, "annotations": anns}))
    builder = convert_sa1b(src, tmp_path / "out", max_masks=3, non_overlapping=False)
    assert len(builder.annotations) == 3
    assert len(list(CocoDataset(str(tmp_path / "out" / "annotations.json")))[0].ids) == 3
    with pytest.raises(InputError):
        convert_sa1b(tmp_path / "empty-dir-that-has-nothing", tmp_path / "o2")


def test_builder_skips_empty_masks_and_checks_shapes():
    b = CocoBuilder()
    i = b.add_image("images/a.png", H, W)
    assert b.add_mask(i, np.zeros((H, W), bool)) is None
    with pytest.raises(InputError):
        b.add_mask(i, np.ones((2, 2), bool))
    with pytest.raises(InputError):
        CocoBuilder(kind="stuff")
