"""User errors at the command line: one sentence on stderr, exit status 2, never a traceback."""

import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from support.tables import make_row

from unsamv2.data import rows_to_table, write_table

pytestmark = pytest.mark.integration  # every test runs the CLI in a subprocess


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "unsamv2", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_sentence(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.startswith("unsamv2: error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def table(tmp_path):
    root = str(tmp_path / "table")
    write_table(root, rows_to_table([make_row(i) for i in range(3)]))
    return root


def test_missing_input_path(tmp_path):
    assert_one_sentence(run_cli("table", "info", str(tmp_path / "nope")), "does not exist")
    assert_one_sentence(run_cli("mine", str(tmp_path / "nope"), str(tmp_path / "out")), "is not a folder")


def test_unwritable_output(table):
    assert_one_sentence(run_cli("table", "export-coco", table, "/proc/unsamv2-test/out.json"), "cannot write")


def test_invalid_schema_version(tmp_path):
    t = rows_to_table([make_row(1)]).replace_schema_metadata({b"unsamv2.schema_version": b"7.2"})
    pq.write_table(t, tmp_path / "old.parquet")
    assert_one_sentence(run_cli("table", "info", str(tmp_path / "old.parquet")), "schema version 7.2")


def test_malformed_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [1, 2,,]}')
    assert_one_sentence(run_cli("table", "import-coco", str(bad), str(tmp_path / "out")), "not valid JSON")


def test_success_prints_a_summary(table, tmp_path):
    info = run_cli("table", "info", table)
    assert info.returncode == 0 and "images     3" in info.stdout
    out = tmp_path / "coco.json"
    exp = run_cli("table", "export-coco", table, str(out))
    assert exp.returncode == 0 and str(out) in exp.stdout and out.exists()
    imp = run_cli("table", "import-coco", str(out), str(tmp_path / "again"))
    assert imp.returncode == 0 and "wrote 3 images in 1 shard(s)" in imp.stdout


def test_help_lists_every_command():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("scenes", "mine", "stats", "table"):
        assert command in out.stdout
