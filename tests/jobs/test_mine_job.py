"""The mine job on the local backend: one row per input, reruns skip, markers drive recomputation."""

import json
import os

import pyarrow.compute as pc
import pytest
from support.broken_images import write_broken_images
from support.miners import band_miner

from unsamv2.data import read_mask_table
from unsamv2.errors import IncompleteRunError, InputError
from unsamv2.jobs.mine import MineJob, run_mine
from unsamv2.pipeline.stage import MinerStage


@pytest.fixture
def inputs(tmp_path):
    expected = write_broken_images(tmp_path / "in")
    return tmp_path / "in", expected


def _job(inputs_dir, out, **kw):
    return MineJob(str(inputs_dir), str(out), shard_size=3, miner_kind="noop", **kw)


def _band_job(job, monkeypatch):
    monkeypatch.setattr(MineJob, "stage", lambda self: MinerStage(band_miner, min_side=self.min_side))
    return job


def test_every_input_is_exactly_one_row_with_the_right_status(inputs, tmp_path, monkeypatch):
    folder, expected = inputs
    job = _band_job(_job(folder, tmp_path / "out"), monkeypatch)
    summary = run_mine(job)
    table = read_mask_table(str(tmp_path / "out"))
    names = [os.path.basename(u) for u in table.column("image_uri").to_pylist()]
    assert sorted(names) == sorted(expected) and len(set(table.column("image_id").to_pylist())) == len(names)
    got = {n: (s if s == "ok" else e) for n, s, e in zip(names, table["status"].to_pylist(), table["error"].to_pylist(), strict=True)}
    assert got == expected
    ok = table.filter(pc.equal(table["status"], "ok"))
    assert all(len(m) > 0 for m in ok["masks"].to_pylist())  # masks for every good image
    assert summary.images == 10 and summary.ok_images == 5 and summary.shards_written == 4
    assert summary.errors == {"empty": 1, "not_an_image": 1, "too_large": 1, "too_small": 1, "truncated": 1}
    assert (tmp_path / "out" / "summary.json").exists()


def test_rerun_skips_and_deleted_marker_recomputes_only_that_shard(inputs, tmp_path):
    folder, _ = inputs
    out = tmp_path / "out"
    first = run_mine(_job(folder, out))
    before = read_mask_table(str(out))
    again = run_mine(_job(folder, out))
    assert (again.shards_skipped, again.shards_written, again.images) == (4, 0, 0)
    os.unlink(out / "shards" / "shard-000002" / "_SUCCESS")
    progress = []
    third = run_mine(_job(folder, out), on_progress=lambda done, total, c: progress.append((done, total)))
    assert (third.shards_written, third.images) == (1, 3) and progress == [(4, 4)]
    after = read_mask_table(str(out))
    assert after.drop_columns([]).to_pylist() == before.to_pylist()
    assert first.shards_written == 4


def test_miner_exceptions_become_error_rows(inputs, tmp_path, monkeypatch):
    folder, _ = inputs

    class Exploding:
        def mine_records(self, image, image_uri):
            raise ValueError("kaboom")

        def config_hash(self):
            return "x"

    monkeypatch.setattr(MineJob, "stage", lambda self: MinerStage(Exploding))
    with pytest.raises(IncompleteRunError, match="every one of the 10 images"):  # all failed: not exit 0
        run_mine(_job(folder, tmp_path / "out"))
    table = read_mask_table(str(tmp_path / "out"))
    failed = [m for m, e in zip(table["error_message"].to_pylist(), table["error"].to_pylist(), strict=True) if e == "failed"]
    assert len(failed) == 5 and all("kaboom" in m for m in failed)


def test_job_validation_is_one_sentence(tmp_path):
    with pytest.raises(InputError, match="shard_size"):
        MineJob(str(tmp_path), str(tmp_path / "o"), shard_size=0, miner_kind="noop")
    with pytest.raises(InputError, match="backend"):
        MineJob(str(tmp_path), str(tmp_path / "o"), backend="spark", miner_kind="noop")
    with pytest.raises(InputError, match="differ"):
        MineJob(str(tmp_path), str(tmp_path), miner_kind="noop")


def test_damaged_shards_are_re_mined_exactly(inputs, tmp_path):
    folder, _ = inputs
    out = tmp_path / "out"
    run_mine(_job(folder, out))
    clean = read_mask_table(str(out)).to_pylist()
    truncated = out / "shards" / "shard-000001" / "part-000001.parquet"
    truncated.write_bytes(truncated.read_bytes()[:100])
    flipped = out / "shards" / "shard-000003" / "part-000003.parquet"
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x10
    flipped.write_bytes(bytes(data))
    rerun = run_mine(_job(folder, out))
    assert (rerun.shards_skipped, rerun.shards_written) == (2, 2)
    assert read_mask_table(str(out)).to_pylist() == clean


def test_the_library_renders_the_summary_for_cli_and_flow_alike(inputs, tmp_path):
    """summary.md is written by run_mine itself (CLI users get it too); the flow's artifacts use
    the same rendering."""
    from unsamv2.jobs.mine import summary_markdown

    folder, _ = inputs
    summary = run_mine(_job(folder, tmp_path / "out"))
    text = (tmp_path / "out" / "summary.md").read_text()
    assert text.strip() == summary.to_markdown().strip()
    assert "| images (this run) | 10 |" in text and "| errors: empty | 1 |" in text
    stats = {"images": 10, "ok_images": 5, "masks": 0, "split": {"train": 9, "val": 1}}
    assert "split train=9 val=1" in summary_markdown(json.loads(summary.to_json()), stats)
