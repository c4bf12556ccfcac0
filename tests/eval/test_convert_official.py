"""SA-1B, PartImageNet and PASCAL-Part converted as the official evaluation samples them, on small
synthetic copies of each source layout."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from unsamv2.data.rle import decode_rle, encode_rle, from_coco_segmentation, to_coco_segmentation
from unsamv2.errors import InputError
from unsamv2.eval.convert_sources import (
    convert_pascal_part,
    convert_sa1b,
    partimagenet_parts,
    pick_disjoint,
)
from unsamv2.eval.datasets import CocoDataset

REPO = Path(__file__).resolve().parents[2]
H, W = 20, 30


def save_image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, str(REPO / "scripts" / "convert" / f"{name}.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)


def annotations(out: Path) -> list[dict]:
    return json.loads((out / "annotations.json").read_text())["annotations"]


def band(y0: int, y1: int, x0: int = 0, x1: int = W) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


# ------------------------------------------------------------------------------------- SA-1B
def test_pick_disjoint_keeps_at_most_k_pairwise_disjoint_masks():
    rng = np.random.default_rng
    disjoint = [band(2 * i, 2 * i + 2) for i in range(8)]
    assert len(pick_disjoint(disjoint, 5, rng(0))) == 5 and sorted(pick_disjoint(disjoint, 20, rng(0))) == list(range(8))
    assert pick_disjoint(disjoint, 5, rng(3)) == pick_disjoint(disjoint, 5, rng(3))  # seeded
    nested = [band(0, 1 + i) for i in range(6)]  # every pair overlaps: one mask only
    assert len(pick_disjoint(nested, 5, rng(0))) == 1
    assert pick_disjoint([], 5, rng(0)) == []
    mixed = [band(0, 10), band(5, 15), band(10, 20), band(0, 20, 0, 3)]
    for seed in range(20):
        chosen = pick_disjoint(mixed, 5, rng(seed))
        assert 1 <= len(chosen) <= 2 and len(set(chosen)) == len(chosen)
        assert all(not (mixed[a] & mixed[b]).any() for a in chosen for b in chosen if a < b)


def sa1b_layout(root: Path, n_images: int = 3) -> Path:
    """``sa_<k>.jpg`` + ``.json``, each with 8 masks: rows of 2 pixels (disjoint), 3 masks that
    overlap them, and one empty mask."""
    for k in range(1, n_images + 1):
        save_image(root / f"sa_{k}.jpg", k)
        masks = [band(2 * i, 2 * i + 2) for i in range(4)] + [band(0, 20, i, i + 2) for i in range(3)]
        masks.append(np.zeros((H, W), bool))
        anns = [{"id": 100 * k + i, "segmentation": to_coco_segmentation(encode_rle(m), H, W)}
                for i, m in enumerate(masks)]
        doc = {"image": {"image_id": k, "file_name": f"sa_{k}.jpg", "height": H, "width": W}, "annotations": anns}
        (root / f"sa_{k}.json").write_text(json.dumps(doc))
    return root


def test_sa1b_keeps_the_first_images_and_at_most_5_disjoint_nonempty_masks(tmp_path):
    src = sa1b_layout(tmp_path / "sa")
    builder = convert_sa1b(src, tmp_path / "out", max_images=2, seed=7)
    assert [im["file_name"] for im in builder.images] == ["images/sa_1.jpg", "images/sa_2.jpg"]
    for image in builder.images:
        masks = [decode_rle(from_coco_segmentation(a["segmentation"], H, W), H, W)
                 for a in builder.annotations if a["image_id"] == image["id"]]
        assert 1 <= len(masks) <= 5 and all(m.any() for m in masks)
        assert all(not (a & b).any() for i, a in enumerate(masks) for b in masks[i + 1:])
    again = convert_sa1b(src, tmp_path / "again", max_images=2, seed=7)
    assert [a["source_id"] for a in again.annotations] == [a["source_id"] for a in builder.annotations]
    every = convert_sa1b(src, tmp_path / "every", max_masks=None)
    assert len(every.images) == 3 and len(every.annotations) == 3 * 7  # the empty mask never counts


@pytest.mark.integration
def test_sa1b_script_defaults_to_the_official_sample(tmp_path):
    src = sa1b_layout(tmp_path / "sa", n_images=2)
    done = run_script("sa1b", str(src), str(tmp_path / "out"))
    assert done.stdout.startswith("wrote") and "2 images" in done.stdout
    per_image = [sum(a["image_id"] == i for a in annotations(tmp_path / "out")) for i in (1, 2)]
    assert all(1 <= n <= 5 for n in per_image)
    run_script("sa1b", str(src), str(tmp_path / "all"), "--max-masks", "0", "--max-images", "0")
    assert len(annotations(tmp_path / "all")) == 2 * 7


# ------------------------------------------------------------------------------- PartImageNet
@pytest.mark.integration
def test_partimagenet_one_object_per_label_background_included_zero_excluded(tmp_path):
    labels = np.full((H, W), 40, np.uint8)  # background
    labels[0:5, 0:5] = 0  # part id 0: not an object in the official loader
    labels[6:9, 2:6] = 3
    labels[12:15, 20:25] = 3  # a second region of part 3: the same object
    labels[10:12, 10:12] = 17
    objects, ignore = partimagenet_parts(labels)
    assert ignore is None and [i for i, _ in objects] == [3, 17, 40]
    assert objects[0][1].sum() == 12 + 15 and objects[2][1].sum() == H * W - 25 - 27 - 4
    rgb = np.repeat(labels[..., None], 3, axis=2)
    assert [i for i, _ in partimagenet_parts(rgb)[0]] == [3, 17, 40]
    # the official layout through the script
    src = tmp_path / "PartImageNet"
    for k, name in enumerate(["n01_1", "n01_2"]):
        save_image(src / "images" / "val" / f"{name}.JPEG", k)
        (src / "annotations" / "val").mkdir(parents=True, exist_ok=True)
        Image.fromarray(labels if k == 0 else np.where(labels == 17, 40, labels).astype(np.uint8)).save(
            src / "annotations" / "val" / f"{name}.png")
    done = run_script("partimagenet", str(src), str(tmp_path / "out"))
    assert "2 images, 5 objects" in done.stdout
    anns = annotations(tmp_path / "out")
    assert [(a["image_id"], a["instance_id"]) for a in anns] == [(1, 3), (1, 17), (1, 40), (2, 3), (2, 40)]
    samples = list(CocoDataset(str(tmp_path / "out" / "annotations.json")))
    assert samples[0].masks.shape == (3, H, W) and int(samples[0].masks[0].sum()) == 27


# -------------------------------------------------------------------------------- PASCAL-Part
def pascal_part_layout(root: Path) -> Path:
    """Three val images (3 objects of 4 parts, one object without parts each) and one train image."""
    for k, name in enumerate(["2008_000001", "2008_000002", "2008_000003", "2008_000009"]):
        save_image(root / "JPEGImages" / f"{name}.jpg", k)
        objects = []
        for o in range(3):
            parts = np.empty(4, dtype=object)
            for j in range(4):
                parts[j] = {"part_name": f"p{j}", "mask": band(o * 6 + j, o * 6 + j + 1).astype(np.uint8)}
            objects.append({"class": "cat", "mask": band(o * 6, o * 6 + 4).astype(np.uint8), "parts": parts})
        objects.append({"class": "bottle", "mask": band(19, 20).astype(np.uint8), "parts": np.empty(0, dtype=object)})
        (root / "Annotations_Part").mkdir(parents=True, exist_ok=True)
        array = np.empty(len(objects), dtype=object)
        array[:] = objects
        savemat(root / "Annotations_Part" / f"{name}.mat", {"anno": {"imname": name, "objects": array}})
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("2008_000001\n2008_000002\n2008_000003\n")
    return root


@pytest.mark.integration
def test_pascal_part_keeps_a_seeded_tenth_of_the_val_parts(tmp_path):
    src = pascal_part_layout(tmp_path / "PascalPart")
    every = convert_pascal_part(src, tmp_path / "all", fraction=1.0)
    assert len(every.images) == 3 and len(every.annotations) == 3 * 12  # val only; no object without parts
    assert {a["part"] for a in every.annotations} == {f"cat/p{j}" for j in range(4)}
    tenth = convert_pascal_part(src, tmp_path / "tenth", seed=3)
    assert len(tenth.annotations) == int(36 * 0.1) == 3
    picked = {(im["source_name"], a["part"], a["area"]) for a in tenth.annotations
              for im in tenth.images if im["id"] == a["image_id"]}
    again = convert_pascal_part(src, tmp_path / "again", seed=3)
    assert picked == {(im["source_name"], a["part"], a["area"]) for a in again.annotations
                      for im in again.images if im["id"] == a["image_id"]}
    assert len({im["source_name"] for im in tenth.images}) == len(tenth.images) <= 3
    done = run_script("pascal_part", str(src), str(tmp_path / "script"), "--seed", "3")
    assert "3 objects" in done.stdout and annotations(tmp_path / "script") == tenth.annotations
    with pytest.raises(InputError, match="no part left"):
        convert_pascal_part(src, tmp_path / "none", max_images=1, fraction=0.05)  # int(12 * 0.05) = 0
