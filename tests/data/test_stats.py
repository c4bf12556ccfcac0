import json

import pytest
from support.tables import error_row, make_row

from unsamv2.data import rows_to_table, write_shard
from unsamv2.data.stats import compute_stats, read_split, split_of
from unsamv2.errors import InputError


@pytest.fixture
def table(tmp_path):
    root = str(tmp_path / "t")
    write_shard(root, 0, rows_to_table([make_row(i, n_masks=3) for i in range(1, 6)]))
    write_shard(root, 1, rows_to_table([make_row(6, n_masks=1), error_row(7, "truncated"), error_row(8, "empty")]))
    return root


@pytest.mark.slow
def test_stats_counts_and_histograms(table, tmp_path):
    out = str(tmp_path / "stats")
    s = compute_stats(table, out, val_fraction=0.3, seed=1)
    assert (s.images, s.ok_images, s.masks) == (8, 6, 16)
    assert s.errors == {"empty": 1, "truncated": 1}
    assert s.masks_per_image["mean"] == pytest.approx(16 / 6, abs=1e-3) and s.masks_per_image["max"] == 3
    # make_row gives g = 0.1, 0.55, 1.0 for 3 masks and 0.1 for a single mask
    assert sum(s.granularity_hist["counts"]) == 16
    assert s.granularity_hist["counts"][0] == 6 and s.granularity_hist["counts"][-1] == 5
    assert sum(s.area_hist["counts"]) == 16
    assert s.origins == {"conquer": 10, "divide": 6}
    assert sum(s.split.values()) == 6
    on_disk = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert on_disk["masks"] == 16 and (tmp_path / "stats" / "stats.png").stat().st_size > 1000
    split = read_split(out)
    assert split["val"] == {i for i in range(1, 7) if split_of(i, 0.3, 1) == "val"}
    assert split["train"] | split["val"] == set(range(1, 7))


def test_split_is_stable_and_close_to_the_fraction():
    ids = range(10_000)
    val = [i for i in ids if split_of(i, 0.1) == "val"]
    assert 900 < len(val) < 1100
    assert val == [i for i in ids if split_of(i, 0.1) == "val"]
    assert split_of(5, 0.1, seed=0) == split_of(5, 0.1, seed=0)


def test_bad_inputs(tmp_path, table):
    with pytest.raises(InputError, match="val_fraction"):
        compute_stats(table, str(tmp_path / "s"), val_fraction=1.5)
    (tmp_path / "empty" / "shards").mkdir(parents=True)
    with pytest.raises(InputError, match="no complete shards"):
        compute_stats(str(tmp_path / "empty"), str(tmp_path / "s"))


@pytest.mark.integration
def test_stats_over_a_table_on_s3(s3_bucket, table, tmp_path):
    """Dask reads the shards from S3 and the statistics, plot and split go back to S3."""
    from unsamv2.data import read_mask_table, storage

    root = f"{s3_bucket}/t"
    local = read_mask_table(table)
    write_shard(root, 0, local.slice(0, 5))
    write_shard(root, 1, local.slice(5))
    on_s3 = compute_stats(root, f"{root}/stats", val_fraction=0.3, seed=1)
    here = compute_stats(table, str(tmp_path / "stats"), val_fraction=0.3, seed=1)
    assert on_s3 == here
    assert json.loads(storage.read_text(f"{root}/stats/stats.json"))["masks"] == 16
    assert storage.exists(f"{root}/stats/stats.png") and read_split(f"{root}/stats") == read_split(str(tmp_path / "stats"))
