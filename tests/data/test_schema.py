import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.tables import error_row, make_row

from unsamv2.data import (
    MASK_TABLE_SCHEMA,
    SCHEMA_VERSION,
    mask_record,
    read_mask_table,
    rows_to_table,
)
from unsamv2.data.schema import check_schema, image_row
from unsamv2.errors import SchemaError


def test_schema_is_explicit_and_versioned():
    assert MASK_TABLE_SCHEMA.metadata[b"unsamv2.schema_version"] == SCHEMA_VERSION.encode()
    masks = MASK_TABLE_SCHEMA.field("masks").type.value_type
    assert [f.name for f in masks] == ["rle", "bbox", "area", "granularity", "instance_id", "is_part", "origin", "score"]
    assert masks.field("rle").type == pa.binary()
    for name in ("image_uri", "image_id", "content_hash", "height", "width", "status", "error", "producer_config_hash"):
        assert name in MASK_TABLE_SCHEMA.names


def test_parquet_round_trip(tmp_path):
    rows = [make_row(i) for i in range(4)] + [error_row(99)]
    table = rows_to_table(rows)
    path = str(tmp_path / "t.parquet")
    pq.write_table(table, path)
    back = read_mask_table(path)
    assert back.schema.equals(MASK_TABLE_SCHEMA, check_metadata=True)
    assert back.to_pylist() == table.to_pylist()
    assert back.equals(table)
    assert back.column("status").to_pylist() == ["ok"] * 4 + ["error"]
    assert back.column("error").to_pylist()[-1] == "truncated"


def test_unknown_major_version_is_refused(tmp_path):
    table = rows_to_table([make_row(1)]).replace_schema_metadata({b"unsamv2.schema_version": b"9.0"})
    path = str(tmp_path / "future.parquet")
    pq.write_table(table, path)
    with pytest.raises(SchemaError, match="version 9.0"):
        read_mask_table(path)


def test_foreign_parquet_is_refused(tmp_path):
    path = str(tmp_path / "other.parquet")
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(SchemaError, match="not an unsamv2 mask table"):
        read_mask_table(path)
    with pytest.raises(SchemaError, match="lacks"):
        check_schema(pa.schema([("a", pa.int64())], metadata={b"unsamv2.schema_version": b"1.0"}))


def test_row_validation():
    with pytest.raises(SchemaError, match="origin"):
        mask_record(b"0", [0, 0, 1, 1], 1, granularity=0.5, instance_id=0, is_part=False, origin="magic")
    with pytest.raises(SchemaError, match="granularity"):
        mask_record(b"0", [0, 0, 1, 1], 1, granularity=1.5, instance_id=0, is_part=False, origin="divide")
    with pytest.raises(SchemaError, match="reason"):
        image_row(image_id=1, image_uri="x", producer_config_hash="c", error="bad luck")
    row = image_row(image_id=1, image_uri="x", producer_config_hash="c", error="empty", error_message="0 bytes")
    assert row["status"] == "error" and row["masks"] == []
