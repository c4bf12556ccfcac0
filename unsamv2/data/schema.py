"""The mask table: one row per input image, masks as a list of structs (explicit, versioned).

Columns (pyarrow types in :data:`MASK_TABLE_SCHEMA`):

=================== ============================================================================
``image_id``        int64, stable id of the image (from the manifest; COCO ``image_id``)
``image_uri``       string, where the image was read from (local path or ``s3://`` URI)
``content_hash``    string, sha256 hex of the image file's bytes (null if unreadable)
``height``/``width`` int32, decoded image size in pixels (null on error before decoding)
``status``          string, ``"ok"`` or ``"error"``
``error``           string, error reason code (one of :data:`ERROR_REASONS`), null when ok
``error_message``   string, human-readable detail of the error, null when ok
``producer_config_hash`` string, hash of the miner / importer config that produced the row
``masks``           list<struct>, one struct per mask (empty on error):

    ``rle``          binary, COCO compressed RLE counts of an (height, width) mask
    ``bbox``         fixed_size_list<float32, 4>, (x, y, w, h) pixels
    ``area``         int64, pixels
    ``granularity``  float32 in [0, 1] (mined masks: [0.1, 1.0]); null if unknown (e.g. imported human labels)
    ``instance_id``  int32, index of the instance group within the image; null if unknown
    ``is_part``      bool, true for parts, false for the instance mask itself; null if unknown
    ``origin``       string, ``divide`` | ``conquer`` | ``part`` | ``gt`` | ``import``
    ``score``        float32, producer's confidence (1.0 when none)
=================== ============================================================================

The schema version is stored in the Parquet schema metadata under ``unsamv2.schema_version``;
readers refuse tables whose major version they do not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from unsamv2.errors import SchemaError

SCHEMA_VERSION = "1.0"
SCHEMA_VERSION_KEY = b"unsamv2.schema_version"
STATUS_OK = "ok"
STATUS_ERROR = "error"
ORIGINS = ("divide", "conquer", "part", "gt", "import")
ERROR_REASONS = (
    "missing",  # key / path does not exist
    "unreadable",  # exists but cannot be read (permissions, I/O error)
    "empty",  # zero bytes
    "not_an_image",  # bytes are not an image format we know
    "undecodable",  # an image format, but decoding failed
    "truncated",  # image data ends early
    "too_large",  # decompression-bomb guard (declared pixels over the limit)
    "too_small",  # below the minimum side length
    "unsupported",  # e.g. an image mode that cannot be converted to RGB
    "failed",  # the producer (miner) raised on this image
    "crashed",  # the worker process died while mining this image, also after a restart (segfault, OOM)
    "no_candidates",  # divide from a candidate file: the file has no candidates for this image
    "bad_candidates",  # divide from a candidate file: the image's candidates do not fit it (size)
    "unavailable",  # storage failed transiently (403, throttling, 5xx, timeout) after retries: such a row
    #                 is never written; its shard stays incomplete and a rerun mines it
)
PERMANENT_ERROR_REASONS = tuple(r for r in ERROR_REASONS if r != "unavailable")

MASK_STRUCT = pa.struct(
    [
        pa.field("rle", pa.binary(), nullable=False),
        pa.field("bbox", pa.list_(pa.field("element", pa.float32()), 4), nullable=False),
        pa.field("area", pa.int64(), nullable=False),
        pa.field("granularity", pa.float32()),
        pa.field("instance_id", pa.int32()),
        pa.field("is_part", pa.bool_()),
        pa.field("origin", pa.string(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
    ]
)

MASK_TABLE_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.int64(), nullable=False),
        pa.field("image_uri", pa.string(), nullable=False),
        pa.field("content_hash", pa.string()),
        pa.field("height", pa.int32()),
        pa.field("width", pa.int32()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("producer_config_hash", pa.string(), nullable=False),
        pa.field("masks", pa.list_(pa.field("element", MASK_STRUCT)), nullable=False),
    ],
    metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode()},
)

# List children are named "element", as Parquet names them, so a table read back equals its schema.
COLUMNS = tuple(MASK_TABLE_SCHEMA.names)


def schema_version_of(schema: pa.Schema) -> str | None:
    """The ``unsamv2.schema_version`` stored in a schema's metadata, or None."""
    meta = schema.metadata or {}
    raw = meta.get(SCHEMA_VERSION_KEY)
    return raw.decode() if raw is not None else None


def check_schema(schema: pa.Schema, where: str = "table") -> None:
    """Raise :class:`SchemaError` unless ``schema`` is a mask-table schema this code can read."""
    version = schema_version_of(schema)
    if version is None:
        raise SchemaError(
            f"{where} has no '{SCHEMA_VERSION_KEY.decode()}' metadata, so it is not an unsamv2 mask "
            "table; write it with unsamv2.data.write_shard or convert it with 'unsamv2 table import-coco'."
        )
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise SchemaError(
            f"{where} has mask-table schema version {version}, but this unsamv2 reads version "
            f"{SCHEMA_VERSION}; re-create it with this version or install the unsamv2 that wrote it."
        )
    missing = [n for n in COLUMNS if n not in schema.names]
    if missing:
        raise SchemaError(f"{where} lacks the mask-table columns {missing}; re-create it with unsamv2.")


def mask_record(
    rle: bytes,
    bbox: Iterable[float],
    area: int,
    *,
    granularity: float | None,
    instance_id: int | None,
    is_part: bool | None,
    origin: str,
    score: float = 1.0,
) -> dict[str, Any]:
    """One element of the ``masks`` list column, validated. ``bbox`` is (x, y, w, h) pixels."""
    if origin not in ORIGINS:
        raise SchemaError(f"mask origin {origin!r} is not one of {ORIGINS}.")
    box = [float(v) for v in bbox]
    if len(box) != 4:
        raise SchemaError(f"bbox must have 4 numbers (x, y, w, h), got {len(box)}.")
    if granularity is not None and not 0.0 <= float(granularity) <= 1.0:
        raise SchemaError(f"granularity must lie in [0, 1], got {granularity}.")
    return {
        "rle": bytes(rle),
        "bbox": box,
        "area": int(area),
        "granularity": None if granularity is None else float(granularity),
        "instance_id": None if instance_id is None else int(instance_id),
        "is_part": None if is_part is None else bool(is_part),
        "origin": origin,
        "score": float(score),
    }


def image_row(
    *,
    image_id: int,
    image_uri: str,
    producer_config_hash: str,
    content_hash: str | None = None,
    height: int | None = None,
    width: int | None = None,
    masks: Iterable[Mapping[str, Any]] = (),
    error: str | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    """One row of the mask table; status is ``error`` exactly when ``error`` (a reason) is given."""
    if error is not None and error not in ERROR_REASONS:
        raise SchemaError(f"error reason {error!r} is not one of {ERROR_REASONS}.")
    masks = list(masks)
    if error is not None and masks:
        raise SchemaError("a row with an error must not carry masks.")
    return {
        "image_id": int(image_id),
        "image_uri": str(image_uri),
        "content_hash": content_hash,
        "height": None if height is None else int(height),
        "width": None if width is None else int(width),
        "status": STATUS_ERROR if error is not None else STATUS_OK,
        "error": error,
        "error_message": error_message if error is not None else None,
        "producer_config_hash": producer_config_hash,
        "masks": [dict(m) for m in masks],
    }


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a mask table (with schema metadata) from :func:`image_row` dicts."""
    return pa.Table.from_pylist(list(rows), schema=MASK_TABLE_SCHEMA)


def empty_table() -> pa.Table:
    """A mask table with no rows."""
    return MASK_TABLE_SCHEMA.empty_table()
