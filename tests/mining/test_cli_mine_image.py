"""``unsamv2 mine-image``: outputs on a small image and one-line errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unsamv2.cli import mine_image
from unsamv2.data.schema import check_schema
from unsamv2.errors import UnSAMv2Error


def _parse(argv):
    parser = argparse.ArgumentParser(prog="unsamv2")
    mine_image.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_mine_image_writes_table_coco_and_overlays(tmp_path, capsys):
    yy, xx = np.mgrid[:128, :160]
    img = np.full((128, 160, 3), 120, np.uint8)
    img[(yy - 60) ** 2 + (xx - 60) ** 2 < 35**2] = (210, 40, 40)
    img[20:60, 100:150] = (40, 40, 210)
    path = tmp_path / "toy.png"
    Image.fromarray(img).save(path)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("rounds: 2\nconquer_long_side: 192\n")
    out = tmp_path / "out"
    args = _parse(["mine-image", str(path), "--out", str(out), "--config", str(cfg),
                   "--divide-long-side", "320", "--coco"])
    assert args.func(args) == 0
    table = pq.read_table(out / "masks.parquet")
    check_schema(table.schema)
    row = table.to_pylist()[0]
    assert row["status"] == "ok" and (row["height"], row["width"]) == (128, 160)
    coco = json.loads((out / "masks.json").read_text())
    assert len(coco["annotations"]) == len(row["masks"]) > 0
    assert {"granularity", "instance_id", "is_part"} <= set(coco["annotations"][0])
    assert len(list(out.glob("overlay_g*.png"))) == 4 and (out / "overview.png").exists()
    assert "mined" in capsys.readouterr().out


def test_mine_image_errors_are_user_errors(tmp_path):
    args = _parse(["mine-image", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")])
    with pytest.raises(UnSAMv2Error, match="does not exist"):
        args.func(args)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    args = _parse(["mine-image", str(bad), "--out", str(tmp_path / "o")])
    with pytest.raises(UnSAMv2Error, match=r"cannot be used as an image \(not_an_image"):
        args.func(args)
    args = _parse(["mine-image", str(bad), "--out", str(tmp_path / "o"), "--thresholds", "0.9,x"])
    with pytest.raises(UnSAMv2Error, match="--thresholds"):
        args.func(args)
