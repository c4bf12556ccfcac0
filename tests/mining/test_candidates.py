"""Divide from a detector's candidates (the release's CutLER divide): score threshold, the
instance/part relation on overlapping candidates (divide parts appear), keys, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from unsamv2.cli import main
from unsamv2.data import read_mask_table, rows_to_table, write_table
from unsamv2.data.rle import encode_rle, to_coco_segmentation
from unsamv2.data.schema import image_row, mask_record
from unsamv2.errors import InputError, RejectedImage
from unsamv2.mining import Miner, MinerConfig
from unsamv2.mining.candidates import Candidate, CandidateIndex, load_candidates

H, W = 96, 128


def scene() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A textured background, a body (instance) with a differently coloured head (part)."""
    rng = np.random.default_rng(0)
    img = (rng.random((H, W, 3)) * 40 + 20).astype(np.uint8)
    body = np.zeros((H, W), bool)
    body[20:80, 30:100] = True
    head = np.zeros((H, W), bool)
    head[25:45, 35:60] = True
    img[body] = (200, 60, 40)
    img[head] = (40, 180, 220)
    noise = np.zeros((H, W), bool)
    noise[5:15, 5:15] = True
    return img, {"body": body, "head": head, "noise": noise}


def coco_file(path, masks: dict[str, np.ndarray], scores: dict[str, float], file_name="cats/a.png") -> str:
    anns = [{"id": i + 1, "image_id": 1, "score": scores[k],
             "segmentation": to_coco_segmentation(encode_rle(m), H, W)} for i, (k, m) in enumerate(masks.items())]
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": file_name, "height": H, "width": W}],
                                "annotations": anns}))
    return str(path)


def test_keys_match_the_longest_trailing_part_of_the_uri():
    c = [Candidate(b"", H, W, 1.0)]
    index = CandidateIndex({"a.png": c, "cats/a.png": c + c, "s3://b/x/dogs/a.png": c * 3, "u/v.png": c,
                            "w/v.png": c}, "f", 0.3)
    assert len(index.lookup("/data/in/cats/a.png")) == 2
    assert len(index.lookup("/elsewhere/a.png")) == 1  # the key "a.png" itself
    assert len(index.lookup("s3://b/x/dogs/a.png")) == 3 and len(index.lookup("/copy/dogs/a.png")) == 3
    assert index.lookup("/data/in/b.png") is None
    assert index.lookup("/data/v.png") is None and len(index.lookup("/data/w/v.png")) == 1  # ambiguous tail
    with pytest.raises(InputError, match="matches none of the 1 input images"):
        index.check_matches(["/data/b.png"])


def test_score_threshold_size_check_and_missing_images(tmp_path):
    _, masks = scene()
    index = load_candidates(coco_file(tmp_path / "c.json", masks, {"body": 0.9, "head": 0.5, "noise": 0.2}))
    got, scores = index.masks_for("/in/cats/a.png", H, W)
    assert got.shape == (2, H, W) and scores.tolist() == pytest.approx([0.9, 0.5])  # 0.2 <= 0.3 dropped
    assert np.array_equal(got[1], masks["head"])
    with pytest.raises(RejectedImage) as exc:
        index.masks_for("/in/cats/other.png", H, W)
    assert exc.value.reason == "no_candidates"
    with pytest.raises(RejectedImage) as exc:
        index.masks_for("/in/cats/a.png", H + 1, W)
    assert exc.value.reason == "bad_candidates"


def test_overlapping_candidates_give_divide_parts(tmp_path):
    img, masks = scene()
    cfg = MinerConfig(candidates=coco_file(tmp_path / "c.json", masks, {"body": 0.95, "head": 0.8, "noise": 0.1}),
                      conquer_long_side=128)
    mined = Miner(cfg).mine(img, "/data/cats/a.png")
    instances = [m for m in mined if m.origin == "divide"]
    parts = [m for m in mined if m.origin == "part"]
    assert len(instances) == 1 and np.array_equal(instances[0].mask, masks["body"])
    assert len(parts) == 1 and np.array_equal(parts[0].mask, masks["head"])
    assert parts[0].instance_id == instances[0].instance_id and parts[0].granularity < 1.0
    maskcut = Miner(MinerConfig(conquer_long_side=128, divide_crops=1)).mine(img)
    assert not [m for m in maskcut if m.origin == "part"]  # one view's disjoint masks never give divide parts
    # (the multi-scale divide's crops overlap the whole image's masks, so it can: test_divide.py)


def test_a_mask_table_works_as_candidate_file(tmp_path):
    _, masks = scene()
    records = [mask_record(encode_rle(m), (0.0, 0.0, 1.0, 1.0), int(m.sum()), score=s, granularity=None,
                             instance_id=None, is_part=None, origin="import")
               for m, s in ((masks["body"], 0.9), (masks["head"], 0.6))]
    row = image_row(image_id=1, image_uri="s3://bucket/in/cats/a.png", producer_config_hash="cutler",
                    height=H, width=W, masks=records)
    write_table(str(tmp_path / "cands"), rows_to_table([row]))
    got, scores = load_candidates(str(tmp_path / "cands"), 0.7).masks_for("/local/copy/cats/a.png", H, W)
    assert got.shape[0] == 1 and scores.tolist() == pytest.approx([0.9])


@pytest.mark.integration
def test_mine_cli_with_candidates(tmp_path, capsys):
    img, masks = scene()
    inputs = tmp_path / "in"
    (inputs / "cats").mkdir(parents=True)
    Image.fromarray(img).save(inputs / "cats" / "a.png")
    Image.fromarray(img[:, ::-1].copy()).save(inputs / "cats" / "b.png")  # not in the candidate file
    cands = coco_file(tmp_path / "c.json", masks, {"body": 0.95, "head": 0.8, "noise": 0.1})
    out = str(tmp_path / "out")
    assert main(["mine", str(inputs), out, "--candidates", cands]) == 0
    rows = {r["image_uri"].rsplit("/", 1)[-1]: r for r in read_mask_table(out).to_pylist()}
    assert rows["b.png"]["error"] == "no_candidates" and "no candidates" in rows["b.png"]["error_message"]
    origins = [m["origin"] for m in rows["a.png"]["masks"]]
    assert origins.count("divide") == 1 and origins.count("part") == 1
    wrong = coco_file(tmp_path / "w.json", masks, {"body": 0.9, "head": 0.9, "noise": 0.9}, file_name="zzz.png")
    assert main(["mine", str(inputs), str(tmp_path / "out2"), "--candidates", wrong]) == 2
    assert "matches none of the 2 input images" in capsys.readouterr().err
