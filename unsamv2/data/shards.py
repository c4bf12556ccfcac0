"""Sharded mask tables: an idempotent shard writer and a reader for local paths and ``s3://``.

Layout under a table root (local folder or ``s3://bucket/prefix``)::

    <root>/shards/shard-000000/part-000000.parquet   the rows of shard 0 (zstd Parquet)
    <root>/shards/shard-000000/_SUCCESS              JSON marker, written LAST:
                                                     {"rows", "file", "schema_version", "size", "sha256"}
    <root>/shards/shard-000001/...

A shard is complete exactly when its ``_SUCCESS`` marker exists AND its data file matches the
marker's size and sha256; readers ignore everything else, so a crash at any point leaves either a
complete shard or an invisible one, and a truncated or altered data file counts as incomplete (a
rerun of ``mine`` recomputes it; readers leave it out with a warning; ``table info`` names it).
Data files are written to a temporary sibling, fsynced and renamed into place, then the folder is
fsynced (local), or uploaded in one PUT (object stores, atomic per object); names are
deterministic, so a retried or rerun shard simply replaces its previous attempt. The marker's
``file`` must be the shard's fixed data-file name: a path is never taken from a marker.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
log = logging.getLogger(__name__)
NO_MARKER = "no _SUCCESS marker"


@dataclass(frozen=True)
class ShardInfo:
    """What a ``_SUCCESS`` marker records about one complete shard.

    ``size`` (bytes) and ``sha256`` of the data file are None only for markers written before
    they were recorded; such shards are checked by row count alone.
    """

    index: int
    rows: int
    data_uri: str
    schema_version: str
    size: int | None = None
    sha256: str | None = None


class CorruptShardError(StorageError):
    """A shard's data file does not match its marker (truncated, altered, missing, unparsable)."""


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
    if "unavailable" in table.column("error").to_pylist():
        raise SchemaError("rows with error 'unavailable' (storage failed transiently) are never written; "
                          "leave their shard incomplete so that a rerun mines them.")
    return table.replace_schema_metadata(MASK_TABLE_SCHEMA.metadata)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=COMPRESSION)
    return sink.getvalue().to_pybytes()


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_data(data: bytes, uri: str) -> None:
    """One PUT on object stores; locally temp file, fsync, rename, fsync of the folder."""
    if storage.is_remote(uri):
        storage.write_bytes(uri, data)
        return
    path = os.path.abspath(storage.filesystem(uri)[1])
    folder = os.path.dirname(path)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(folder)
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
    data = _parquet_bytes(table)
    try:
        _write_data(data, data_uri)
    except OSError as exc:
        raise StorageError(f"cannot write shard {index} to {data_uri} ({exc}); check the output location.") from exc
    info = ShardInfo(index=index, rows=table.num_rows, data_uri=data_uri, schema_version=SCHEMA_VERSION,
                     size=len(data), sha256=hashlib.sha256(data).hexdigest())
    marker = {"rows": info.rows, "file": os.path.basename(data_uri), "schema_version": SCHEMA_VERSION,
              "size": info.size, "sha256": info.sha256}
    storage.write_text(marker_uri(root, index), json.dumps(marker))
    return info


def _parse_marker(root: str, index: int, text: str) -> ShardInfo:
    """The marker's record; raises :class:`CorruptShardError` if it is not one we wrote."""
    where = marker_uri(root, index)
    try:
        meta = json.loads(text)
        rows, name = int(meta["rows"]), str(meta["file"])
        size = None if meta.get("size") is None else int(meta["size"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptShardError(f"shard marker {where} is not a valid marker ({exc}); a rerun recomputes the shard.") from exc
    expected = os.path.basename(shard_data_uri(root, index))
    if name != expected:  # never join a path taken from a file: the data file's name is fixed
        raise CorruptShardError(f"shard marker {where} names the data file {name!r}, not {expected!r}; "
                                "a rerun recomputes the shard.")
    return ShardInfo(index=index, rows=rows, data_uri=shard_data_uri(root, index),
                     schema_version=str(meta.get("schema_version", "")), size=size,
                     sha256=meta.get("sha256"))


def _marker_indices(root: str) -> list[int]:
    found = []
    for uri in storage.glob(storage.join(root, SHARDS_DIR, "shard-*", MARKER)):
        match = _SHARD_RE.search(uri[: -len(MARKER) - 1])
        if match is not None:
            found.append(int(match.group(1)))
    return sorted(found)


def read_marker(root: str, index: int) -> ShardInfo | None:
    """Shard ``index``'s marker record, or None without a marker. Raises :class:`CorruptShardError`
    for a marker that cannot be parsed."""
    try:
        text = storage.read_text(marker_uri(root, index))
    except StorageError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return _parse_marker(root, index, text)


def _read_verified(info: ShardInfo) -> bytes:
    """The data file's bytes, checked against the marker's size and checksum."""
    try:
        data = storage.read_bytes(info.data_uri)
    except StorageError as exc:
        if "does not exist" not in str(exc):
            raise
        raise CorruptShardError(f"shard {info.index} has a marker but no data file {info.data_uri}; "
                                "a rerun recomputes it.") from exc
    if info.size is not None and len(data) != info.size:
        raise CorruptShardError(f"shard {info.index}'s data file holds {len(data)} bytes, its marker says {info.size} "
                                "(truncated or replaced); a rerun recomputes it.")
    if info.sha256 is not None and hashlib.sha256(data).hexdigest() != info.sha256:
        raise CorruptShardError(f"shard {info.index}'s data file does not match its marker's checksum (altered on "
                                "storage); a rerun recomputes it.")
    return data


def read_shard(info: ShardInfo, columns: list[str] | None = None) -> pa.Table:
    """Read one complete shard, verifying size, checksum, schema version and row count.

    Raises :class:`CorruptShardError` (a :class:`StorageError`) when the shard does not match its
    marker: such a shard counts as incomplete (a rerun of ``mine`` recomputes it).
    """
    data = _read_verified(info)
    try:
        reader = pq.ParquetFile(pa.BufferReader(data))
        check_schema(reader.schema_arrow, where=info.data_uri)
        table = reader.read(columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptShardError(f"shard {info.index}'s data file is not readable Parquet ({exc}); "
                                "a rerun recomputes it.") from exc
    if table.num_rows != info.rows:
        raise CorruptShardError(f"shard {info.index} holds {table.num_rows} rows but its marker says {info.rows}; "
                                "a rerun recomputes it.")
    return table


def _check_shard(root: str, index: int) -> tuple[ShardInfo | None, str | None]:
    """(marker record, None) when shard ``index`` is complete and intact; (None, why not) else."""
    try:
        info = read_marker(root, index)
        if info is None:
            return None, NO_MARKER
        read_shard(info, columns=["image_id"])
    except (CorruptShardError, SchemaError) as exc:
        return None, str(exc)
    return info, None


def verify_shard(root: str, index: int) -> str | None:
    """None when shard ``index`` is complete and intact; else why not (no marker, or a mismatch)."""
    return _check_shard(root, index)[1]


def is_complete(root: str, index: int) -> bool:
    """True when shard ``index`` has its marker and its data file matches it (reads the file)."""
    return verify_shard(root, index) is None


def list_complete_shards(root: str) -> list[ShardInfo]:
    """Every shard under ``root`` with a parsable marker, in index order (reads only the markers;
    :func:`read_shard` verifies the data). Unparsable markers are logged and left out."""
    infos = []
    for index in _marker_indices(root):
        try:
            info = read_marker(root, index)
        except CorruptShardError as exc:
            log.warning("%s", exc)
            continue
        if info is not None:
            infos.append(info)
    return infos


def scan_shards(root: str) -> tuple[list[ShardInfo], dict[int, str]]:
    """(intact shards, {index: reason} of shards whose marker or data file is damaged); reads every
    shard's data file once. Shards without a marker are neither (they are simply not done)."""
    intact: list[ShardInfo] = []
    damaged: dict[int, str] = {}
    for index in _marker_indices(root):
        info, reason = _check_shard(root, index)
        if info is not None:
            intact.append(info)
        elif reason != NO_MARKER:  # a marker removed since it was listed: not done, as without one
            damaged[index] = str(reason)
    return intact, damaged


def read_table_checked(uri: str, columns: list[str] | None = None) -> tuple[pa.Table, list[int], dict[int, str]]:
    """(the intact shards' rows in shard order, their indices, {index: reason} of damaged shards)
    of the table root ``uri``, reading each shard once."""
    if not storage.exists(uri):
        raise StorageError(f"{uri} does not exist; give the folder (or s3:// prefix) a mask table was written to.")
    tables, intact, damaged = [], [], {}
    for index in _marker_indices(uri):
        try:
            info = read_marker(uri, index)
            if info is not None:
                tables.append(read_shard(info, columns))
                intact.append(index)
        except (CorruptShardError, SchemaError) as exc:
            damaged[index] = str(exc)
    if not tables:
        if not storage.exists(storage.join(uri, SHARDS_DIR)):
            raise StorageError(f"{uri} holds no mask table (no '{SHARDS_DIR}/' folder); give the table's root folder.")
        base = empty_table()
        return (base.select(columns) if columns else base), intact, damaged
    return pa.concat_tables(tables), intact, damaged


def read_mask_table(uri: str, columns: list[str] | None = None) -> pa.Table:
    """The whole mask table at ``uri`` as one ``pyarrow.Table``.

    ``uri`` is a table root (every complete, intact shard, in shard order: a shard that does not
    match its marker counts as incomplete and is left out with a warning) or a single ``.parquet``
    file, local or ``s3://``. Columns include ``image_uri``, ``status`` (``ok`` | ``error``),
    ``error`` (reason) and ``masks`` (see :mod:`unsamv2.data.schema`).
    """
    if uri.endswith(".parquet"):
        return _read_single_file(uri, columns)
    table, _, damaged = read_table_checked(uri, columns)
    for reason in damaged.values():
        log.warning("left out: %s", reason)
    return table


def _read_single_file(uri: str, columns: list[str] | None) -> pa.Table:
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        raise StorageError(f"{uri} does not exist; check the path or URI of the mask table.")
    try:
        check_schema(pq.read_schema(path, filesystem=fs), where=uri)
        return pq.read_table(path, filesystem=fs, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StorageError(f"{uri} is not a readable Parquet file ({exc}); rewrite it or give another file.") from exc


def write_table(root: str, table: pa.Table, shard_size: int = 1000) -> list[ShardInfo]:
    """Write a whole in-memory mask table as consecutive shards of ``shard_size`` rows each."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    n_shards = max(1, -(-table.num_rows // shard_size))
    return [write_shard(root, i, table.slice(i * shard_size, shard_size)) for i in range(n_shards)]
