"""COCO import validates the file: each problem is one InputError sentence naming the id and the fix."""

import logging

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from unsamv2.data.coco import _rle_runs, coco_to_table, official_json_to_row
from unsamv2.data.rle import encode_rle, to_coco_segmentation
from unsamv2.errors import InputError

H, W = 40, 50


def rle_of(counts: list[int], h: int = H, w: int = W) -> dict:
    """A compressed-RLE segmentation with exactly these runs (no checks, like a hostile file)."""
    return {"size": [h, w], "counts": mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)["counts"].decode()}


def box(h: int = H, w: int = W) -> dict:
    m = np.zeros((h, w), bool)
    m[2:9, 3:7] = True
    return to_coco_segmentation(encode_rle(m), h, w)


def coco(images=None, annotations=None) -> dict:
    images = images if images is not None else [{"id": 1, "file_name": "a.png", "height": H, "width": W}]
    annotations = annotations if annotations is not None else [{"id": 1, "image_id": 1, "segmentation": box()}]
    return {"images": images, "annotations": annotations}


def one_sentence(exc: pytest.ExceptionInfo, *fragments: str) -> None:
    msg = str(exc.value)
    assert msg.count("; ") == 1 and msg.endswith(".") and "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg


def test_a_valid_file_imports():
    (row,) = coco_to_table(coco(), image_root="/data").to_pylist()
    assert row["image_uri"] == "/data/a.png" and [m["area"] for m in row["masks"]] == [28]


def test_garbage_rle_is_refused():
    """An RLE whose runs cover 30 million pixels of a 40x50 image (area 30,000,000 was imported)."""
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(annotations=[{"id": 7, "image_id": 1, "segmentation": rle_of([0, 30_000_000])}]))
    one_sentence(exc, "annotation 7", "30,000,000 pixels", "50x40", "fix or drop the annotation")


@pytest.mark.parametrize(("segmentation", "fragment"), [
    ({"size": [H, W], "counts": [5, 10]}, "cover 15 pixels"),
    ({"size": [H, W], "counts": [-5, 2005]}, "not all non-negative integers"),
    ({"size": [H, W], "counts": "not an rle \u00e9"}, "not a valid COCO RLE string"),
    ({"size": [H, W], "counts": "0"}, "cover 0 pixels"),
    ({"size": [W, H], "counts": rle_of([H * W])["counts"]}, "RLE of size [50, 40]"),
    ([[1, 1, 5, 1, 5, float("nan")]], "far outside"),
    ([[1, 1, 5, 1, 5, 1e12]], "far outside"),
    ([["a", 1, 5, 1, 5, 5]], "not lists of numbers"),
    (17, "neither polygons nor RLE"),
])
def test_inconsistent_segmentations_are_refused(segmentation, fragment):
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(annotations=[{"id": 3, "image_id": 1, "segmentation": segmentation}]))
    one_sentence(exc, "annotation 3", fragment)


def test_duplicate_ids_are_refused():
    image = {"id": 1, "file_name": "a.png", "height": H, "width": W}
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(images=[image, dict(image, file_name="b.png")]))
    one_sentence(exc, "image id 1 appears more than once", "unique id")
    ann = {"id": 4, "image_id": 1, "segmentation": box()}
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(annotations=[ann, dict(ann)]))
    one_sentence(exc, "annotation id 4 appears more than once", "unique id")


def test_an_annotation_of_an_unknown_image_is_refused():
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(annotations=[{"id": 5, "image_id": 9, "segmentation": box()}]))
    one_sentence(exc, "annotation 5", "refers to image 9", "add that image or remove the annotation")


@pytest.mark.parametrize(("h", "w"), [(0, W), (H, -3), ("40", W), (True, W), (4.5, W), (200_000, 200_000)])
def test_sizes_must_be_positive_and_sane(h, w):
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(images=[{"id": 2, "file_name": "a.png", "height": h, "width": w}], annotations=[]))
    one_sentence(exc, "image 2")


@pytest.mark.parametrize("bad_id", ["1", 1.5, None, True])
def test_ids_must_be_integers(bad_id):
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(images=[{"id": bad_id, "file_name": "a.png", "height": H, "width": W}], annotations=[]))
    one_sentence(exc, "not an integer")


def test_crowd_regions_are_refused_unless_skipped(caplog):
    crowd = {"id": 8, "image_id": 1, "iscrowd": 1, "segmentation": rle_of([100, 50, H * W - 150])}
    anns = [{"id": 1, "image_id": 1, "segmentation": box()}, crowd]
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(annotations=anns))
    one_sentence(exc, "annotation 8 of image 1", "crowd/ignore region", "iscrowd=1")
    with pytest.raises(InputError, match="annotation 9 of image 1"):
        coco_to_table(coco(annotations=[{"id": 9, "image_id": 1, "ignore": 1, "segmentation": box()}]))
    with caplog.at_level(logging.WARNING, logger="unsamv2.data.coco"):
        (row,) = coco_to_table(coco(annotations=anns), skip_crowd=True).to_pylist()
    assert [m["area"] for m in row["masks"]] == [28] and "left out 1 crowd" in caplog.text


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/../../x.png", "a\\..\\x.png", "C:/x.png", "a\x00.png"])
def test_file_names_cannot_escape_the_image_root(name):
    image = {"id": 6, "file_name": name, "height": H, "width": W}
    with pytest.raises(InputError) as exc:
        coco_to_table(coco(images=[image], annotations=[]), image_root="/data")
    one_sentence(exc, "file_name of image 6")


def test_absolute_and_uri_file_names_are_kept_as_locations():
    """What 'table export-coco' writes (the row's image_uri) imports back unchanged."""
    images = [{"id": 1, "file_name": "/imgs/a.png", "height": H, "width": W},
              {"id": 2, "file_name": "s3://b/imgs/a.png", "height": H, "width": W}]
    rows = coco_to_table(coco(images=images, annotations=[]), image_root="/data").to_pylist()
    assert [r["image_uri"] for r in rows] == ["/imgs/a.png", "s3://b/imgs/a.png"]
    with pytest.raises(InputError, match="'..'"):
        coco_to_table(coco(images=[dict(images[0], file_name="/imgs/../../etc/x.png")], annotations=[]))


def test_official_documents_are_validated_too():
    doc = {"image": {"id": 7, "file_name": "a.jpg", "height": H, "width": W},
           "annotations": [{"id": 1, "segmentation": rle_of([0, 30_000_000])}]}
    with pytest.raises(InputError) as exc:
        official_json_to_row(doc, image_root=None, where="img7.json")
    one_sentence(exc, "annotation 1 in img7.json", "30,000,000 pixels")
    with pytest.raises(InputError, match="image 7 in img7.json"):
        official_json_to_row(dict(doc, image=dict(doc["image"], height=0)), image_root=None, where="img7.json")


def test_rle_run_decoder_matches_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 300, 2))
        cuts = np.sort(rng.choice(h * w, size=min(h * w - 1, int(rng.integers(0, 40))), replace=False))
        runs = np.diff(np.concatenate(([0], cuts, [h * w]))).tolist()
        runs = [0, *runs] if rng.random() < 0.5 else runs
        packed = mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)["counts"]
        decoded = _rle_runs(packed)
        assert decoded.sum() == h * w
        m = mask_utils.decode({"size": [h, w], "counts": packed})
        assert decoded[1::2].sum() == m.sum()


def test_import_coco_cli_refuses_crowd_unless_skip_crowd(tmp_path, capsys):
    import json

    from unsamv2.cli import main

    crowd = {"id": 8, "image_id": 1, "iscrowd": 1, "segmentation": rle_of([100, 50, H * W - 150])}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(coco(annotations=[{"id": 1, "image_id": 1, "segmentation": box()}, crowd])))
    assert main(["table", "import-coco", str(path), str(tmp_path / "t")]) == 2
    assert "--skip-crowd" in capsys.readouterr().err
    assert main(["table", "import-coco", str(path), str(tmp_path / "t"), "--skip-crowd"]) == 0
    assert "wrote 1 images" in capsys.readouterr().out
