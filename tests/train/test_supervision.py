"""Light supervision (UnSAMv2+): g for human masks by the mining rule, and mixing them into training."""

import json
import os

import numpy as np
import pytest

from unsamv2.data.rle import encode_rle, to_coco_segmentation
from unsamv2.train.supervision import human_granularity, human_mask_table


def ann(i, mask, **extra):
    h, w = mask.shape
    return {"id": i, "image_id": 1, "segmentation": to_coco_segmentation(encode_rle(mask), h, w), **extra}


def box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_given_granularity_is_kept():
    m = box(20, 20, 0, 10, 0, 10)
    assert human_granularity([ann(1, m, granularity=0.4)], 20, 20) == [0.4]


def test_parent_ids_reproduce_the_scene_granularity(scene_table):
    coco = scene_table["coco"]
    image = coco["images"][0]
    anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
    stripped = [{k: v for k, v in a.items() if k != "granularity"} for a in anns]
    got = human_granularity(stripped, image["height"], image["width"])
    assert np.allclose(got, [a["granularity"] for a in anns], atol=1e-6)


def test_containment_builds_groups_without_parents():
    whole = box(40, 40, 0, 40, 0, 20)  # 800 px
    part = box(40, 40, 0, 10, 0, 20)  # 200 px, inside whole
    small = box(40, 40, 0, 5, 0, 5)  # 25 px, inside both: joins the smallest instance, whole
    alone = box(40, 40, 0, 10, 30, 40)  # its own group
    g = human_granularity([ann(1, whole), ann(2, part), ann(3, small), ann(4, alone)], 40, 40)
    expected_part = 0.1 + 0.9 * (np.sqrt(200) - np.sqrt(25)) / (np.sqrt(800) - np.sqrt(25))
    assert g == pytest.approx([1.0, expected_part, 0.1, 1.0])


def test_human_table_is_idempotent_and_drops_crowds(scene_table, tmp_path):
    from unsamv2.data import read_mask_table

    coco = json.loads(json.dumps(scene_table["coco"]))
    for a in coco["annotations"]:
        a.pop("granularity")
    coco["annotations"][0]["iscrowd"] = 1
    path = tmp_path / "human.json"
    path.write_text(json.dumps(coco))
    out = str(tmp_path / "table")
    human_mask_table(str(path), out, image_root=scene_table["images"])
    table = read_mask_table(out)
    assert table.num_rows == len(coco["images"])
    masks = [m for row in table.to_pylist() for m in row["masks"]]
    assert len(masks) == len(coco["annotations"]) - 1 and all(m["origin"] == "gt" for m in masks)
    assert all(0.1 - 1e-6 <= m["granularity"] <= 1.0 for m in masks)
    stamp = os.path.getmtime(os.path.join(out, "source.json"))
    human_mask_table(str(path), out, image_root=scene_table["images"])
    assert os.path.getmtime(os.path.join(out, "source.json")) == stamp


def test_training_mixes_human_images(scene_table, tmp_path):
    from unsamv2.train import TrainConfig, train
    from unsamv2.train.loader import LoaderPosition, TrainLoader

    coco_path = tmp_path / "human.json"
    coco_path.write_text(json.dumps(scene_table["coco"]))
    config = TrainConfig(table_uri=scene_table["table"], output_uri=str(tmp_path / "run"), max_steps=2,
                         batch_size=2, max_masks_per_image=2, correction_clicks=1, val_images=0,
                         human_coco_uri=str(coco_path), human_image_root=scene_table["images"], human_fraction=0.5)
    result = train(config)
    assert result.steps == 2
    loader = TrainLoader(config, 64, human_table_uri=str(tmp_path / "run" / "human_table"))
    records = loader._records(LoaderPosition())
    sources = [next(records)[0].source for _ in range(6)]
    assert sources == ["mined", "human"] * 3
