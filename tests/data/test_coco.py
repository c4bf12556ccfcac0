import json

import numpy as np
import pyarrow.compute as pc
import pytest
from pycocotools.coco import COCO
from support.tables import error_row, make_row

from unsamv2.data import (
    coco_to_table,
    decode_rles,
    import_official_dir,
    rows_to_table,
    table_to_coco,
)
from unsamv2.data.coco import load_json
from unsamv2.errors import InputError


def _masks(table):
    out = []
    for row in table.to_pylist():
        if row["status"] == "ok":
            out.append(decode_rles([m["rle"] for m in row["masks"]], row["height"], row["width"]))
    return out


def test_coco_round_trip_keeps_granularity_fields(tmp_path):
    table = rows_to_table([make_row(i, n_masks=4) for i in range(1, 4)] + [error_row(9)])
    coco = table_to_coco(table)
    assert [im["id"] for im in coco["images"]] == [1, 2, 3]  # error rows are not exported
    ann = coco["annotations"][0]
    assert {"granularity", "instance_id", "is_part", "origin", "score"} <= set(ann)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    api = COCO(str(path))  # pycocotools accepts it
    first = api.loadAnns(api.getAnnIds(imgIds=[1]))[0]
    np.testing.assert_array_equal(api.annToMask(first).astype(bool), _masks(table)[0][0])

    back = coco_to_table(load_json(str(path)), producer_config_hash="cfg")
    ok = table.filter(pc.equal(table.column("status"), "ok"))
    for a, b in zip(ok.to_pylist(), back.to_pylist(), strict=True):
        assert a["image_id"] == b["image_id"] and (a["height"], a["width"]) == (b["height"], b["width"])
        assert [m["rle"] for m in a["masks"]] == [m["rle"] for m in b["masks"]]
        for ma, mb in zip(a["masks"], b["masks"], strict=True):
            for key in ("granularity", "instance_id", "is_part", "origin", "score", "bbox", "area"):
                assert ma[key] == mb[key], key


def test_import_polygons_and_scene_fields():
    coco = {
        "images": [{"id": 0, "file_name": "a.png", "height": 10, "width": 10}],
        "annotations": [
            {"id": 1, "image_id": 0, "segmentation": [[1, 1, 8, 1, 8, 8, 1, 8]], "object_id": 1, "level": 0,
             "granularity": 1.0, "parent_id": None},
            {"id": 2, "image_id": 0, "segmentation": [[1, 1, 4, 1, 4, 4, 1, 4]], "object_id": 1, "level": 1,
             "granularity": 0.1, "parent_id": 1},
        ],
    }
    (row,) = coco_to_table(coco, image_root="/data").to_pylist()
    assert row["image_uri"] == "/data/a.png" and row["image_id"] == 0
    assert [m["is_part"] for m in row["masks"]] == [False, True]
    assert [m["instance_id"] for m in row["masks"]] == [1, 1]
    assert row["masks"][0]["area"] > row["masks"][1]["area"] > 0
    assert all(m["origin"] == "import" for m in row["masks"])


def test_import_official_per_image_layout(tmp_path):
    h, w = 8, 9
    m1 = np.zeros((h, w), bool)
    m1[1:7, 1:8] = True
    m2 = np.zeros((h, w), bool)
    m2[1:3, 1:3] = True
    from unsamv2.data import encode_rles, to_coco_segmentation

    segs = [to_coco_segmentation(c, h, w) for c in encode_rles(np.stack([m2, m1]))]
    doc = {
        "info": {}, "licenses": [], "categories": [{"id": 1, "name": "fg"}],
        "image": {"id": 7, "file_name": "img7.jpg", "height": h, "width": w},
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 4, "bbox": [1, 1, 2, 2],
             "segmentation": segs[0], "is_divide": False, "is_conquer": True, "granularity": 0.1,
             "instance_id": 0, "is_part": True},
            {"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 42, "bbox": [1, 1, 7, 6],
             "segmentation": segs[1], "is_divide": True, "is_conquer": False, "granularity": 1.0,
             "instance_id": 0, "is_part": False},
        ],
    }
    (tmp_path / "img7.json").write_text(json.dumps(doc))
    (row,) = import_official_dir(str(tmp_path), image_root="/imgs").to_pylist()
    assert row["image_uri"] == "/imgs/img7.jpg" and row["producer_config_hash"] == "official-unsamv2"
    assert [m["origin"] for m in row["masks"]] == ["conquer", "divide"]
    assert [m["area"] for m in row["masks"]] == [4, 42]
    np.testing.assert_array_equal(decode_rles([m["rle"] for m in row["masks"]], h, w), np.stack([m2, m1]))


def test_malformed_inputs_give_one_sentence(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(InputError, match=r"not valid JSON \(line 1"):
        load_json(str(bad))
    with pytest.raises(InputError, match="lacks the fields"):
        coco_to_table({"images": [{"id": 1}], "annotations": []})
    (tmp_path / "no_json").mkdir()
    with pytest.raises(InputError, match="no .json files"):
        import_official_dir(str(tmp_path / "no_json"))
