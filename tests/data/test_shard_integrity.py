"""Shards are verified against their marker (size, sha256, fixed file name): a truncated, bit-flipped
or redirected shard counts as incomplete, is left out by readers and named by ``table info``."""

import json
import os

import pyarrow as pa
import pytest
from support.tables import error_row, make_row

from unsamv2.cli import main
from unsamv2.data import read_mask_table, rows_to_table, write_table
from unsamv2.data import shards as shards_mod
from unsamv2.errors import SchemaError


def _table(tmp_path, n=6, shard_size=2):
    root = str(tmp_path / "table")
    write_table(root, rows_to_table([make_row(i) for i in range(n)]), shard_size=shard_size)
    return root


def _data_file(root, index):
    return shards_mod.shard_data_uri(root, index)


def test_marker_records_size_and_checksum(tmp_path):
    root = _table(tmp_path)
    marker = json.loads(open(shards_mod.marker_uri(root, 1)).read())
    assert marker["size"] == os.path.getsize(_data_file(root, 1))
    assert len(marker["sha256"]) == 64 and marker["file"] == "part-000001.parquet"
    assert shards_mod.is_complete(root, 1)


def test_truncated_shard_is_incomplete_and_left_out(tmp_path):
    root = _table(tmp_path)
    path = _data_file(root, 1)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    assert not shards_mod.is_complete(root, 1)
    assert "truncated" in shards_mod.verify_shard(root, 1)
    assert read_mask_table(root).column("image_id").to_pylist() == [0, 1, 4, 5]  # no ArrowInvalid


def test_bit_flip_is_detected_even_when_parquet_still_parses(tmp_path):
    root = _table(tmp_path)
    path = _data_file(root, 2)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 3] ^= 0x01
    open(path, "wb").write(bytes(data))
    assert "checksum" in shards_mod.verify_shard(root, 2)
    assert read_mask_table(root).column("image_id").to_pylist() == [0, 1, 2, 3]


def test_marker_naming_another_file_is_refused(tmp_path):
    root = _table(tmp_path)
    outside = tmp_path / "elsewhere.parquet"
    outside.write_bytes(open(_data_file(root, 0), "rb").read())
    marker = json.loads(open(shards_mod.marker_uri(root, 0)).read())
    marker["file"] = "../../../elsewhere.parquet"
    open(shards_mod.marker_uri(root, 0), "w").write(json.dumps(marker))
    assert "names the data file" in shards_mod.verify_shard(root, 0)
    assert read_mask_table(root).column("image_id").to_pylist() == [2, 3, 4, 5]


def test_table_info_names_damaged_shards(tmp_path, capsys):
    root = _table(tmp_path)
    open(_data_file(root, 1), "ab").write(b"garbage")
    assert main(["table", "info", root]) == 0
    out = capsys.readouterr().out
    assert "damaged    shard 1" in out and "rerun" in out
    assert "images     4" in out


def test_data_is_fsynced_before_the_marker(tmp_path, monkeypatch):
    events = []
    real_fsync, real_write_text = os.fsync, shards_mod.storage.write_text
    monkeypatch.setattr(shards_mod.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(shards_mod.storage, "write_text",
                        lambda uri, text: (events.append(os.path.basename(uri)), real_write_text(uri, text))[1])
    shards_mod.write_shard(str(tmp_path / "t"), 0, rows_to_table([make_row(1)]))
    assert events.index("fsync") < events.index("_SUCCESS")
    assert events.count("fsync") >= 2  # the file, then its folder


def test_unavailable_rows_are_never_written(tmp_path):
    row = error_row(3, "unavailable")
    with pytest.raises(SchemaError, match="never written"):
        shards_mod.write_shard(str(tmp_path / "t"), 0, rows_to_table([make_row(1), row]))
    assert not os.path.exists(shards_mod.marker_uri(str(tmp_path / "t"), 0))


def test_old_markers_without_checksum_still_read(tmp_path):
    root = _table(tmp_path, n=2)
    marker = json.loads(open(shards_mod.marker_uri(root, 0)).read())
    del marker["size"], marker["sha256"]
    open(shards_mod.marker_uri(root, 0), "w").write(json.dumps(marker))
    assert read_mask_table(root).num_rows == 2 and isinstance(read_mask_table(root), pa.Table)
