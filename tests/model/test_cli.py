"""``unsamv2 segment`` / ``segment-video`` / ``info`` smoke tests on the tiny model."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from unsamv2.cli import info, segment
from unsamv2.errors import UnSAMv2Error


def run(argv: list[str]) -> int:
    """Parse with just these commands (as ``unsamv2`` does) and call the handler."""
    parser = argparse.ArgumentParser(prog="unsamv2")
    sub = parser.add_subparsers()
    info.register(sub)
    segment.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def image_file(photo, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return str(path)


def test_segment_clicks_writes_masks_overlays_and_a_strip(image_file, photo, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["segment", image_file, "--point", "200,150", "--negative", "30,250",
                "--granularity", "0.2", "0.8", "--out", str(out), "--config", "tiny"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"mask_g0.20.png", "mask_g0.80.png", "overlay_g0.20.png", "overlay_g0.80.png",
            "strip.png", "predictions.json"} <= names
    mask = np.asarray(Image.open(out / "mask_g0.20.png"))
    assert mask.shape == photo.shape[:2] and set(np.unique(mask)) <= {0, 255}
    strip = Image.open(out / "strip.png")
    assert strip.width > 2 * photo.shape[1]
    summary = json.loads((out / "predictions.json").read_text())
    assert [m["granularity"] for m in summary["masks"]] == [0.2, 0.8]
    assert summary["labels"] == [1, 0]
    captured = capsys.readouterr()
    assert "wrote 6 files" in captured.out and "random weights" in captured.err


def test_segment_whole_image(image_file, tmp_path):
    out = tmp_path / "whole"
    assert run(["segment", image_file, "--whole", "--granularity", "0.3", "0.9", "--out", str(out),
                "--config", "tiny", "--points-per-side", "3"]) == 0
    for g in ("0.30", "0.90"):
        assert (out / f"whole_g{g}.png").exists()
        records = json.loads((out / f"masks_g{g}.json").read_text())
        assert isinstance(records, list)
        assert all(r["granularity"] == float(g) and "segmentation" in r for r in records)
    assert (out / "strip.png").exists()


def test_segment_whole_image_filters_are_flags_and_an_empty_result_says_how_to_keep_more(image_file, tmp_path,
                                                                                             capsys):
    base = ["segment", image_file, "--whole", "--granularity", "0.3", "--config", "tiny", "--points-per-side", "3"]
    assert run([*base, "--out", str(tmp_path / "official")]) == 0  # the random model passes no filter
    assert json.loads((tmp_path / "official" / "masks_g0.30.json").read_text()) == []
    assert "--pred-iou-thresh 0 --stability-thresh 0" in capsys.readouterr().err
    out = tmp_path / "unfiltered"
    assert run([*base, "--out", str(out), "--pred-iou-thresh", "0", "--stability-thresh", "0"]) == 0
    records = json.loads((out / "masks_g0.30.json").read_text())
    assert records and all(r["predicted_iou"] > 0 for r in records)
    assert "no mask passed" not in capsys.readouterr().err


def test_segment_whole_image_writes_a_png_per_mask(image_file, photo, tmp_path, monkeypatch):
    """Each record of masks_<g>.json names its PNG mask, which equals the record's RLE (the random
    tiny model keeps no mask, so the generator's records are planted)."""
    from unsamv2.data.rle import decode_rles, encode_rle
    from unsamv2.model import UnSAMv2MaskGenerator

    h, w = photo.shape[:2]
    planted = np.zeros((2, h, w), bool)
    planted[0, 10:60, 20:90] = True
    planted[1, 100:, :50] = True

    def records(self, granularity):
        return [{"rle": encode_rle(m), "area": int(m.sum()), "granularity": granularity, "predicted_iou": 0.9}
                for m in planted]

    monkeypatch.setattr(UnSAMv2MaskGenerator, "generate_for_set_image", records)
    out = tmp_path / "whole"
    assert run(["segment", image_file, "--whole", "--granularity", "0.5", "--out", str(out), "--config", "tiny"]) == 0
    listed = json.loads((out / "masks_g0.50.json").read_text())
    assert [r["mask"] for r in listed] == ["masks_g0.50/0000.png", "masks_g0.50/0001.png"]
    for k, record in enumerate(listed):
        png = np.asarray(Image.open(out / record["mask"])) > 0
        assert (png == planted[k]).all() and (png == decode_rles([encode_rle(planted[k])], h, w)[0]).all()


def test_segment_video(photo, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(photo, 10 * i, axis=1)).save(frames / f"{i:03d}.jpg")
    out = tmp_path / "video"
    assert run(["segment-video", str(frames), "--point", "200,150", "--granularity", "0.5",
                "--out", str(out), "--config", "tiny", "--frame", "1"]) == 0
    assert sorted(p.name for p in (out / "g0.50").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert (out / "overlay_g0.50.png").exists()
    assert "wrote 4 files" in capsys.readouterr().out


def test_real_configs_need_weights(image_file, tmp_path):
    with pytest.raises(UnSAMv2Error, match="needs weights.*--config base"):
        run(["segment", image_file, "--point", "1,1", "--granularity", "0.5", "--out", str(tmp_path),
             "--config", "sam2.1_hiera_s"])


def test_bad_clicks_and_granularities_are_user_errors(image_file, tmp_path):
    with pytest.raises(UnSAMv2Error, match="positive click"):
        run(["segment", image_file, "--negative", "1,1", "--granularity", "0.5",
             "--out", str(tmp_path), "--config", "tiny"])
    with pytest.raises(UnSAMv2Error, match="outside"):
        run(["segment", image_file, "--point", "5000,1", "--granularity", "0.5",
             "--out", str(tmp_path), "--config", "tiny"])
    with pytest.raises(UnSAMv2Error, match="granularity"):
        run(["segment", image_file, "--point", "1,1", "--granularity", "1.5",
             "--out", str(tmp_path), "--config", "tiny"])
    with pytest.raises(SystemExit):  # argparse: malformed X,Y
        run(["segment", image_file, "--point", "1;1", "--granularity", "0.5", "--out", str(tmp_path)])


def test_info_prints_parameter_counts(capsys):
    assert run(["info", "--config", "tiny"]) == 0
    text = capsys.readouterr().out
    assert "trainable parameters   345,760" in text
    assert "LoRA                   94,208" in text and "granularity MLP        111,232" in text


def test_through_the_unsamv2_entry_point(image_file, tmp_path, capsys):
    from unsamv2.cli import main

    assert main(["segment", image_file, "--point", "1,1", "--granularity", "0.5", "--config", "sam2.1_hiera_s",
                 "--out", str(tmp_path)]) == 2
    assert "needs weights" in capsys.readouterr().err
    assert main(["info", "--config", "tiny"]) == 0
    assert "adapter additions      345,760" in capsys.readouterr().out
