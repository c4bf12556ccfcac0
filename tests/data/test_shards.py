import json
import os

import pytest
from support.tables import error_row, make_row

from unsamv2.data import (
    list_complete_shards,
    read_mask_table,
    rows_to_table,
    write_shard,
    write_table,
)
from unsamv2.data import shards as shards_mod
from unsamv2.errors import SchemaError, StorageError


def test_write_and_read_in_shard_order(tmp_path):
    root = str(tmp_path / "table")
    write_shard(root, 1, rows_to_table([make_row(3), error_row(4)]))
    write_shard(root, 0, rows_to_table([make_row(1), make_row(2)]))
    table = read_mask_table(root)
    assert table.column("image_id").to_pylist() == [1, 2, 3, 4]
    assert [s.index for s in list_complete_shards(root)] == [0, 1]
    names = sorted(os.listdir(tmp_path / "table" / "shards" / "shard-000000"))
    assert names == ["_SUCCESS", "part-000000.parquet"]  # deterministic names, no temp left over
    marker = json.loads((tmp_path / "table/shards/shard-000000/_SUCCESS").read_text())
    assert marker["rows"] == 2 and marker["schema_version"] == "1.0"


def test_crash_between_temp_and_rename_leaves_nothing_visible(tmp_path, monkeypatch):
    root = str(tmp_path / "table")
    write_shard(root, 0, rows_to_table([make_row(1)]))

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(shards_mod.os, "replace", crash)
    with pytest.raises(StorageError, match="cannot write shard 1"):
        write_shard(root, 1, rows_to_table([make_row(2)]))
    monkeypatch.undo()
    shard1 = tmp_path / "table" / "shards" / "shard-000001"
    assert not (shard1 / "_SUCCESS").exists()
    assert not (shard1 / "part-000001.parquet").exists()
    assert [p.name for p in shard1.iterdir()] == []  # the temp file was removed too
    assert read_mask_table(root).column("image_id").to_pylist() == [1]


@pytest.mark.integration
def test_a_process_killed_between_temp_and_rename_leaves_no_visible_shard(tmp_path):
    """A real SIGKILL (no cleanup runs): the temp file stays behind, hidden; no data file, no marker,
    and readers and a rerun see only complete shards."""
    import signal
    import subprocess
    import sys

    root = str(tmp_path / "table")
    write_shard(root, 0, rows_to_table([make_row(1)]))
    script = (
        "import os, signal, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from support.tables import make_row\n"
        "from unsamv2.data import rows_to_table, write_shard, shards\n"
        "shards.os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)\n"
        "write_shard(sys.argv[1], 1, rows_to_table([make_row(2)]))\n"
    )
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script, root, tests_dir], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    shard1 = tmp_path / "table" / "shards" / "shard-000001"
    leftovers = [p.name for p in shard1.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".part-000001.parquet.tmp-")  # killed mid-write
    assert [s.index for s in list_complete_shards(root)] == [0]
    assert read_mask_table(root).column("image_id").to_pylist() == [1]
    write_shard(root, 1, rows_to_table([make_row(2)]))  # the rerun of that shard
    assert read_mask_table(root).column("image_id").to_pylist() == [1, 2]


def test_rewrite_replaces_a_shard_and_removes_its_marker_first(tmp_path, monkeypatch):
    root = str(tmp_path / "table")
    write_shard(root, 0, rows_to_table([make_row(1), make_row(2)]))
    seen = []
    real = shards_mod._write_data

    def spy(data, uri):
        seen.append(shards_mod.is_complete(root, 0))
        real(data, uri)

    monkeypatch.setattr(shards_mod, "_write_data", spy)
    write_shard(root, 0, rows_to_table([make_row(7)]))
    assert seen == [False]
    assert read_mask_table(root).column("image_id").to_pylist() == [7]


def test_unmarked_shard_is_ignored_and_bad_marker_detected(tmp_path):
    root = str(tmp_path / "table")
    write_table(root, rows_to_table([make_row(i) for i in range(5)]), shard_size=2)
    assert len(list_complete_shards(root)) == 3
    os.unlink(tmp_path / "table/shards/shard-000001/_SUCCESS")
    assert read_mask_table(root).column("image_id").to_pylist() == [0, 1, 4]
    (tmp_path / "table/shards/shard-000002/_SUCCESS").write_text(json.dumps(
        {"rows": 5, "file": "part-000002.parquet", "schema_version": "1.0"}))  # an old marker, wrong count
    assert read_mask_table(root).column("image_id").to_pylist() == [0, 1]  # left out as incomplete
    intact, damaged = shards_mod.scan_shards(root)
    assert [s.index for s in intact] == [0] and "marker says 5" in damaged[2]


def test_missing_and_empty_tables(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        read_mask_table(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorageError, match="no mask table"):
        read_mask_table(str(tmp_path / "empty"))
    (tmp_path / "empty" / "shards").mkdir()
    assert read_mask_table(str(tmp_path / "empty")).num_rows == 0


def test_rows_that_do_not_fit_are_refused(tmp_path):
    import pyarrow as pa

    with pytest.raises(SchemaError, match="do not fit"):
        write_shard(str(tmp_path), 0, pa.table({"image_id": [1]}))
