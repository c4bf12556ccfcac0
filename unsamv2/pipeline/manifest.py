"""The manifest: every input image, a stable id, and its place in a fixed shard.

Inputs: a local folder (recursive), an ``s3://`` prefix (streamed page by page from the listing
API, in key order), or a ``.txt`` file with one image path/URI per line. Image ids are stable:
a 63-bit hash of the image's key relative to the input root, so the same file gets the same id on
every run. Shard ``k`` holds entries ``k * shard_size .. (k + 1) * shard_size - 1`` of the sorted
listing.

The manifest is planned once per output and persisted (``<output>/manifest.parquet``, one row group
per shard, then ``<output>/manifest.json`` written last); reruns reuse it, so a rerun always sees
the same shards even if the input listing changed meanwhile. Planning streams: memory holds one
shard of entries (plus, for local folders, the names of one directory while it is sorted).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from unsamv2.data import storage
from unsamv2.errors import InputError, SchemaError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MANIFEST_FILE = "manifest.parquet"
MANIFEST_META = "manifest.json"
LOGGED_SKIPS = 10  # per kind of skipped entry, then only the totals
log = logging.getLogger(__name__)
MANIFEST_SCHEMA = pa.schema(
    [("shard", pa.int32()), ("position", pa.int32()), ("image_id", pa.int64()), ("image_uri", pa.string())]
)


@dataclass(frozen=True)
class ManifestInfo:
    """What ``manifest.json`` records: the input, the shard plan and counts.

    The ``skipped_*`` counts after ``skipped_non_images`` are the walker's (:class:`WalkCounts`);
    they default to 0 so a ``manifest.json`` written before they existed still loads.
    """

    input_uri: str
    shard_size: int
    num_images: int
    num_shards: int
    skipped_non_images: int
    skipped_symlink_loops: int = 0
    skipped_undecodable_names: int = 0
    skipped_unreadable_dirs: int = 0

    def shard_rows(self, shard: int) -> int:
        """Number of images in ``shard`` (the last shard may be smaller)."""
        return min(self.shard_size, self.num_images - shard * self.shard_size)


def image_id_for(key: str) -> int:
    """Stable 63-bit id of an image from its key relative to the input root."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


@dataclass
class WalkCounts:
    """Entries the local folder walker skipped instead of crashing (logged, kept in ``manifest.json``)."""

    symlink_loops: int = 0  # a symlink to a folder that contains it (or to itself)
    undecodable_names: int = 0  # a file or folder name that is not valid UTF-8
    unreadable_dirs: int = 0  # a folder that cannot be listed (permissions, I/O error)

    def skip(self, kind: str, path: str, why: str) -> None:
        """Count one skipped ``path`` under ``kind``; the first few of each kind are logged one by one."""
        setattr(self, kind, getattr(self, kind) + 1)
        if getattr(self, kind) <= LOGGED_SKIPS:
            log.warning("skipping %s: %s", ascii(os.fsencode(path))[2:-1], why)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode kept undecodable bytes as surrogates
        return False
    return True


def _dir_entries(folder: str, counts: WalkCounts) -> list[tuple[str, tuple[int, int] | None]]:
    """Sorted (name, (st_dev, st_ino) if a folder else None) of ``folder``; hidden names dropped."""
    try:
        with os.scandir(folder) as it:
            raw = list(it)
    except OSError as exc:
        counts.skip("unreadable_dirs", folder, f"cannot list this folder ({exc.strerror}); fix its permissions")
        return []
    out = []
    for e in raw:
        if e.name.startswith("."):
            continue
        if not _utf8(e.name):
            counts.skip("undecodable_names", e.path, "the name is not valid UTF-8; rename it to include it")
            continue
        try:
            st = e.stat(follow_symlinks=True) if e.is_dir(follow_symlinks=True) else None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            counts.skip("symlink_loops", e.path, "a symlink loop; remove or repoint the link")
            continue
        out.append((e.name, None if st is None else (st.st_dev, st.st_ino)))
    return sorted(out)


def _iter_local(folder: str, counts: WalkCounts | None = None,
                ancestors: frozenset[tuple[int, int]] | None = None) -> Iterator[str]:
    """Files under ``folder`` in sorted path order (hidden names skipped), one directory at a time.

    Never raises on a hostile tree: a symlink back to a folder on the current path (a loop), a
    name that is not UTF-8 and an unlistable folder are skipped and counted in ``counts``.
    """
    counts = counts if counts is not None else WalkCounts()
    if ancestors is None:
        st = os.stat(folder)
        ancestors = frozenset({(st.st_dev, st.st_ino)})
    for name, dir_key in _dir_entries(folder, counts):
        path = os.path.join(folder, name)
        if dir_key is None:
            yield path
        elif dir_key in ancestors:
            counts.skip("symlink_loops", path, "a symlink loop (it leads back to a folder above it); remove it")
        else:
            yield from _iter_local(path, counts, ancestors | {dir_key})


def _iter_s3(uri: str) -> Iterator[str]:
    import boto3

    bucket, _, prefix = uri[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    client = boto3.client("s3", endpoint_url=storage.s3_endpoint_url())
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):
                yield f"s3://{bucket}/{obj['Key']}"


def _iter_list_file(uri: str) -> Iterator[str]:
    with storage.open_uri(uri, "rt") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


def iter_inputs(input_uri: str, counts: WalkCounts | None = None) -> Iterator[tuple[str, str]]:
    """(key, uri) of every input, streamed in a deterministic order; key is relative to the root.

    Non-image file names in folders are skipped (counted by :func:`plan_manifest`); every line of a
    list file is an input, missing or not. What a local walk skips is counted in ``counts``.
    """
    if input_uri.endswith(".txt"):
        for uri in _iter_list_file(input_uri):
            yield uri, uri
        return
    if input_uri.startswith("s3://"):
        base = input_uri.rstrip("/") + "/"
        yield from ((u[len(base):], u) for u in _iter_s3(input_uri))
        return
    if not os.path.isdir(input_uri):
        raise InputError(f"input {input_uri} is not a folder, an s3:// prefix or a .txt list of images; check the path.")
    root = os.path.abspath(input_uri)
    yield from ((os.path.relpath(p, root), p) for p in _iter_local(root, counts))


def _batches(entries: Iterable[tuple[str, str]], size: int, skipped: list[int]) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for key, uri in entries:
        if not (key == uri or _is_image_name(key)):
            skipped[0] += 1
            continue
        batch.append((image_id_for(key), uri))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def plan_manifest(input_uri: str, output_uri: str, shard_size: int,
                  entries: Iterable[tuple[str, str]] | None = None) -> ManifestInfo:
    """Write the manifest of ``input_uri`` under ``output_uri`` (streaming) and return its info.

    ``entries`` overrides the listing (key, uri) pairs, e.g. for simulated listings in benchmarks.
    Entries the walker skipped (symlink loops, non-UTF-8 names, unlistable folders) are counted in
    the info and logged as one warning.
    """
    if shard_size < 1:
        raise InputError(f"shard size must be at least 1, got {shard_size}.")
    storage.makedirs(output_uri)
    skipped, walk = [0], WalkCounts()
    listing = entries if entries is not None else iter_inputs(input_uri, walk)
    fs, path = storage.filesystem(storage.join(output_uri, MANIFEST_FILE))
    num_images = num_shards = 0
    with fs.open(path, "wb") as f, pq.ParquetWriter(f, MANIFEST_SCHEMA, compression="zstd") as writer:
        for shard, batch in enumerate(_batches(listing, shard_size, skipped)):
            ids, uris = zip(*batch, strict=True)
            writer.write_table(pa.table({"shard": [shard] * len(batch), "position": list(range(len(batch))),
                                         "image_id": list(ids), "image_uri": list(uris)}, schema=MANIFEST_SCHEMA))
            num_images += len(batch)
            num_shards += 1
    info = ManifestInfo(input_uri=input_uri, shard_size=shard_size, num_images=num_images,
                        num_shards=num_shards, skipped_non_images=skipped[0],
                        skipped_symlink_loops=walk.symlink_loops,
                        skipped_undecodable_names=walk.undecodable_names,
                        skipped_unreadable_dirs=walk.unreadable_dirs)
    _log_walk_skips(input_uri, walk)
    storage.write_text(storage.join(output_uri, MANIFEST_META), json.dumps(asdict(info)))
    return info


def _log_walk_skips(input_uri: str, walk: WalkCounts) -> None:
    """One warning with the walker's totals (nothing when it skipped nothing)."""
    parts = [f"{n} {what}" for n, what in ((walk.undecodable_names, "names that are not valid UTF-8 (rename them)"),
                                          (walk.symlink_loops, "symlink loops (remove the links)"),
                                          (walk.unreadable_dirs, "unlistable folders (fix permissions)")) if n]
    if parts:
        log.warning("listing %s skipped %s; they are not in the manifest", input_uri, ", ".join(parts))


def load_manifest_info(output_uri: str) -> ManifestInfo | None:
    """The persisted manifest info under ``output_uri``, or None if no manifest was completed."""
    meta = storage.join(output_uri, MANIFEST_META)
    if not storage.exists(meta):
        return None
    try:
        return ManifestInfo(**json.loads(storage.read_text(meta)))
    except (json.JSONDecodeError, TypeError) as exc:
        raise SchemaError(f"{meta} is damaged ({exc}); delete it to plan the manifest again.") from exc


def ensure_manifest(input_uri: str, output_uri: str, shard_size: int) -> ManifestInfo:
    """Reuse the manifest under ``output_uri`` if it matches this input and shard size, else plan it."""
    info = load_manifest_info(output_uri)
    if info is None:
        return plan_manifest(input_uri, output_uri, shard_size)
    if info.input_uri != input_uri or info.shard_size != shard_size:
        raise InputError(
            f"{output_uri} already holds a run of input {info.input_uri} with shard size {info.shard_size}; "
            "use the same input and shard size to resume it, or choose a new output."
        )
    return info


def read_shard_entries(output_uri: str, shard: int) -> pa.Table:
    """The manifest rows (shard, position, image_id, image_uri) of one shard."""
    fs, path = storage.filesystem(storage.join(output_uri, MANIFEST_FILE))
    with fs.open(path, "rb") as f:
        return pq.ParquetFile(f).read_row_group(shard)
