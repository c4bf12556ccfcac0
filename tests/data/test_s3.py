"""Parquet shards and storage helpers against a real S3 endpoint (moto server on 127.0.0.1)."""

import boto3
import pytest
from support.tables import error_row, make_row

from unsamv2.data import list_complete_shards, read_mask_table, rows_to_table, storage, write_shard

pytestmark = pytest.mark.integration


def test_shards_round_trip_on_s3(s3_bucket, moto_s3):
    root = f"{s3_bucket}/runs/table"
    rows0, rows1 = [make_row(1), make_row(2)], [error_row(3), make_row(4)]
    write_shard(root, 0, rows_to_table(rows0))
    write_shard(root, 1, rows_to_table(rows1))
    table = read_mask_table(root)
    assert table.to_pylist() == rows_to_table(rows0 + rows1).to_pylist()
    keys = sorted(o["Key"] for o in boto3.client("s3", endpoint_url=moto_s3)
                  .list_objects_v2(Bucket=s3_bucket[5:])["Contents"])
    assert keys == [
        "runs/table/shards/shard-000000/_SUCCESS",
        "runs/table/shards/shard-000000/part-000000.parquet",
        "runs/table/shards/shard-000001/_SUCCESS",
        "runs/table/shards/shard-000001/part-000001.parquet",
    ]
    assert [s.index for s in list_complete_shards(root)] == [0, 1]


def test_storage_helpers_on_s3(s3_bucket):
    uri = f"{s3_bucket}/a/b.txt"
    storage.write_text(uri, "hello")
    assert storage.exists(uri)
    assert storage.read_text(uri) == "hello"
    storage.write_bytes(f"{s3_bucket}/a/c/d.bin", b"x")
    assert list(storage.iter_files(f"{s3_bucket}/a")) == [f"{s3_bucket}/a/b.txt", f"{s3_bucket}/a/c/d.bin"]
    with pytest.raises(storage.StorageError, match="does not exist"):
        storage.read_bytes(f"{s3_bucket}/missing")
