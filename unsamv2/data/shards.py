"""Sharded mask tables: an idempotent shard writer and a reader for local paths and ``s3://``.

Layout under a table root (local folder or ``s3://bucket/prefix``)::

    <root>/shards/shard-000000/part-000000.parquet   the rows of shard 0 (zstd Parquet)
    <root>/shards/shard-000000/_SUCCESS              JSON marker, written LAST
    <root>/shards/shard-000001/...

A shard is complete exactly when its ``_SUCCESS`` marker exists; readers ignore everything else, so
a crash at any point leaves either a complete shard or an invisible one. Data files are written to a
temporary sibling and renamed into place (local) or uploaded in one PUT (object stores, atomic per
object); names are deterministic, so a retried or rerun shard simply replaces its previous attempt.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from unsamv2.data import storage
from unsamv2.data.schema import MASK_TABLE_SCHEMA, SCHEMA_VERSION, check_schema, empty_table
from unsamv2.errors import SchemaError, StorageError

SHARDS_DIR = "shards"
MARKER = "_SUCCESS"
COMPRESSION = "zstd"
_SHARD_RE = re.compile(r"shard-(\d{6,})$")


@dataclass(frozen=True)
class ShardInfo:
    """What a ``_SUCCESS`` marker records about one complete shard."""

    index: int
    rows: int
    data_uri: str
    schema_version: str


def shard_dir(root: str, index: int) -> str:
    """The folder / prefix of shard ``index`` under the table root."""
    if index < 0:
        raise ValueError(f"shard index must be >= 0, got {index}")
    return storage.join(root, SHARDS_DIR, f"shard-{index:06d}")


def shard_data_uri(root: str, index: int) -> str:
    """The Parquet file of shard ``index``."""
    return storage.join(shard_dir(root, index), f"part-{index:06d}.parquet")


def marker_uri(root: str, index: int) -> str:
    """The ``_SUCCESS`` marker of shard ``index``."""
    return storage.join(shard_dir(root, index), MARKER)


def _conform(table: pa.Table) -> pa.Table:
    try:
        table = table.select(list(MASK_TABLE_SCHEMA.names)).cast(MASK_TABLE_SCHEMA)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise SchemaError(f"rows do not fit the mask-table schema ({exc}); build them with unsamv2.data.image_row.") from exc
    return table.replace_schema_metadata(MASK_TABLE_SCHEMA.metadata)


def _write_parquet(table: pa.Table, uri: str) -> None:
    fs, path = storage.filesystem(uri)
    if storage.is_remote(uri):
        with fs.open(path, "wb") as f:  # one object, visible only when the upload completes
            pq.write_table(table, f, compression=COMPRESSION)
        return
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        pq.write_table(table, tmp, compression=COMPRESSION)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_shard(root: str, index: int, table: pa.Table) -> ShardInfo:
    """Write ``table`` (mask-table rows) as shard ``index`` of the table at ``root``; marker last.

    Rewriting an existing shard replaces it (the marker is removed first, so readers never pair an
    old marker with new data). Returns what the marker records.
    """
    table = _conform(table)
    storage.makedirs(shard_dir(root, index))
    storage.delete(marker_uri(root, index))
    data_uri = shard_data_uri(root, index)
    try:
        _write_parquet(table, data_uri)
    except OSError as exc:
        raise StorageError(f"cannot write shard {index} to {data_uri} ({exc}); check the output location.") from exc
    info = ShardInfo(index=index, rows=table.num_rows, data_uri=data_uri, schema_version=SCHEMA_VERSION)
    marker = {"rows": info.rows, "file": os.path.basename(data_uri), "schema_version": SCHEMA_VERSION}
    storage.write_text(marker_uri(root, index), json.dumps(marker))
    return info


def is_complete(root: str, index: int) -> bool:
    """True when shard ``index`` has its ``_SUCCESS`` marker."""
    return storage.exists(marker_uri(root, index))


def list_complete_shards(root: str) -> list[ShardInfo]:
    """Every complete shard under ``root``, in index order (reads the markers)."""
    markers = storage.glob(storage.join(root, SHARDS_DIR, "shard-*", MARKER))
    infos = []
    for uri in markers:
        folder = uri[: -len(MARKER) - 1]
        match = _SHARD_RE.search(folder)
        if match is None:
            continue
        try:
            meta = json.loads(storage.read_text(uri))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"shard marker {uri} is not valid JSON ({exc.msg}); delete it to recompute that shard.") from exc
        infos.append(
            ShardInfo(
                index=int(match.group(1)),
                rows=int(meta["rows"]),
                data_uri=storage.join(folder, meta["file"]),
                schema_version=str(meta.get("schema_version", "")),
            )
        )
    return sorted(infos, key=lambda s: s.index)


def read_shard(info: ShardInfo, columns: list[str] | None = None) -> pa.Table:
    """Read one complete shard, checking its schema version and row count."""
    fs, path = storage.filesystem(info.data_uri)
    try:
        table = pq.read_table(path, filesystem=fs, columns=columns)
    except FileNotFoundError as exc:
        raise StorageError(
            f"shard {info.index} has a marker but no data file {info.data_uri}; delete its _SUCCESS marker and rerun."
        ) from exc
    check_schema(pq.read_schema(path, filesystem=fs), where=info.data_uri)
    if table.num_rows != info.rows:
        raise SchemaError(
            f"shard {info.index} holds {table.num_rows} rows but its marker says {info.rows}; "
            "delete its _SUCCESS marker and rerun to recompute it."
        )
    return table


def read_mask_table(uri: str, columns: list[str] | None = None) -> pa.Table:
    """The whole mask table at ``uri`` as one ``pyarrow.Table``.

    ``uri`` is a table root (every complete shard, in shard order) or a single ``.parquet`` file,
    local or ``s3://``. Columns include ``image_uri``, ``status`` (``ok`` | ``error``), ``error``
    (reason) and ``masks`` (see :mod:`unsamv2.data.schema`).
    """
    if uri.endswith(".parquet"):
        fs, path = storage.filesystem(uri)
        if not fs.exists(path):
            raise StorageError(f"{uri} does not exist; check the path or URI of the mask table.")
        check_schema(pq.read_schema(path, filesystem=fs), where=uri)
        return pq.read_table(path, filesystem=fs, columns=columns)
    if not storage.exists(uri):
        raise StorageError(f"{uri} does not exist; give the folder (or s3:// prefix) a mask table was written to.")
    shards = list_complete_shards(uri)
    if not shards:
        if not storage.exists(storage.join(uri, SHARDS_DIR)):
            raise StorageError(f"{uri} holds no mask table (no '{SHARDS_DIR}/' folder); give the table's root folder.")
        base = empty_table()
        return base.select(columns) if columns else base
    return pa.concat_tables([read_shard(s, columns) for s in shards])


def write_table(root: str, table: pa.Table, shard_size: int = 1000) -> list[ShardInfo]:
    """Write a whole in-memory mask table as consecutive shards of ``shard_size`` rows each."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    n_shards = max(1, -(-table.num_rows // shard_size))
    return [write_shard(root, i, table.slice(i * shard_size, shard_size)) for i in range(n_shards)]
