"""COCO JSON interop for mask tables, and import of the official release's per-image JSON layout.

COCO export keeps the granularity fields: every annotation carries ``granularity``,
``instance_id``, ``is_part``, ``origin`` and ``score`` next to the standard ``segmentation``
(compressed RLE ``{"size": [H, W], "counts": str}``), ``bbox`` (x, y, w, h), ``area`` and
``iscrowd``. Import accepts any COCO instance file (polygons, uncompressed or compressed RLE);
granularity fields are taken when present (also the procedural scenes' ``object_id`` / ``level``).
Import validates the file before building any row and stops at the first problem with one
:class:`~unsamv2.errors.InputError` sentence naming the id and the fix (see :func:`coco_to_table`):
a COCO file is one input, so a bad entry is not turned into an error row (those are for images
that fail to decode while mining). Crowd / ignore regions are refused (the mask table has no
ignore regions) unless ``skip_crowd=True`` leaves them out.

The official UnSAMv2 mining code writes one JSON per image: ``{"image": {id, file_name, height,
width, ...}, "annotations": [{segmentation, bbox, area, granularity, instance_id, is_part,
is_divide, is_conquer, ...}], ...}``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from unsamv2.data import storage
from unsamv2.data.images import DEFAULT_MAX_PIXELS
from unsamv2.data.paths import relative_parts, safe_join
from unsamv2.data.rle import from_coco_segmentation, rle_areas, rle_bboxes, to_coco_segmentation
from unsamv2.data.schema import STATUS_OK, image_row, mask_record, rows_to_table
from unsamv2.errors import InputError

CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}
MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS  # the image reader's decompression-bomb guard
log = logging.getLogger(__name__)


def load_json(uri: str) -> Any:
    """Parse the JSON file at ``uri`` (local or s3://), with a one-sentence error if it is malformed."""
    text = storage.read_text(uri)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{uri} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix or regenerate the file."
        ) from exc


def table_to_coco(table: pa.Table) -> dict[str, Any]:
    """A COCO dict (images, annotations with granularity fields, one category) from a mask table.

    Only rows with status ``ok`` are exported; ``file_name`` is the row's ``image_uri``.
    """
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    cols = ["image_id", "image_uri", "height", "width", "status", "masks"]
    for row in table.select(cols).to_pylist():
        if row["status"] != STATUS_OK:
            continue
        h, w = row["height"], row["width"]
        images.append({"id": row["image_id"], "file_name": row["image_uri"], "height": h, "width": w})
        for m in row["masks"]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": row["image_id"],
                    "category_id": CATEGORY["id"],
                    "segmentation": to_coco_segmentation(m["rle"], h, w),
                    "area": m["area"],
                    "bbox": [float(v) for v in m["bbox"]],
                    "iscrowd": 0,
                    "granularity": m["granularity"],
                    "instance_id": m["instance_id"],
                    "is_part": m["is_part"],
                    "origin": m["origin"],
                    "score": m["score"],
                }
            )
    return {"info": {"description": "unsamv2 mask table export"}, "images": images,
            "annotations": annotations, "categories": [CATEGORY]}


def _require(obj: Any, keys: Iterable[str], what: str, where: str) -> None:
    if not isinstance(obj, Mapping):
        raise InputError(f"{what} in {where} is a {type(obj).__name__}, not a JSON object; it is not in COCO format.")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InputError(f"{what} in {where} lacks the fields {missing}; it is not in COCO format.")


def _int_id(value: Any, what: str, where: str) -> int:
    """``value`` as an integer id; bools, fractions and strings are refused with one sentence."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} in {where} is {value!r}, not an integer; give every id as a whole number.")
    return value


def _image_size(img: Mapping[str, Any], where: str) -> tuple[int, int]:
    """(height, width) of an image entry: positive integers, at most :data:`MAX_IMAGE_PIXELS` pixels."""
    h, w = img["height"], img["width"]
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer() and v > 0
             for v in (h, w))
    if not ok:
        raise InputError(f"image {img.get('id')!r} in {where} has height {h!r} and width {w!r}; "
                         "both must be positive whole numbers of pixels.")
    if int(h) * int(w) > MAX_IMAGE_PIXELS:
        raise InputError(f"image {img.get('id')!r} in {where} claims {int(w)}x{int(h)} pixels, over the "
                         f"{MAX_IMAGE_PIXELS:,}-pixel limit; fix its height/width or leave the image out.")
    return int(h), int(w)


def _check_images(images: Any, where: str) -> dict[int, tuple[int, int]]:
    """{image id: (height, width)} of a COCO ``images`` list; ids must be unique integers."""
    if not isinstance(images, list):
        raise InputError(f"'images' in {where} is not a list; it is not in COCO format.")
    sizes: dict[int, tuple[int, int]] = {}
    for img in images:
        _require(img, ("id", "file_name", "height", "width"), f"image {_get(img, 'id')}", where)
        image_id = _int_id(img["id"], "an image id", where)
        if image_id in sizes:
            raise InputError(f"image id {image_id} appears more than once in {where}; give every image a unique id.")
        sizes[image_id] = _image_size(img, where)
    return sizes


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else None


def _is_crowd(ann: Mapping[str, Any]) -> bool:
    return bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0))


def _check_annotation_ids(anns: Any, where: str) -> None:
    """Annotations are JSON objects with a segmentation; those with an ``id`` have unique integer ids."""
    if not isinstance(anns, list):
        raise InputError(f"'annotations' in {where} is not a list; it is not in COCO format.")
    seen: set[int] = set()
    for ann in anns:
        _require(ann, ("segmentation",), f"annotation {_get(ann, 'id')}", where)
        if "id" in ann:
            ann_id = _int_id(ann["id"], "an annotation id", where)
            if ann_id in seen:
                raise InputError(f"annotation id {ann_id} appears more than once in {where}; "
                                 "give every annotation a unique id.")
            seen.add(ann_id)


def _group_annotations(anns: list[Mapping[str, Any]], sizes: Mapping[int, tuple[int, int]], where: str,
                       skip_crowd: bool) -> dict[int, list[Mapping[str, Any]]]:
    """Annotations by (known) image id; crowd / ignore regions refused, or counted and left out."""
    _check_annotation_ids(anns, where)
    by_image: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    crowd = 0
    for ann in anns:
        _require(ann, ("image_id",), f"annotation {ann.get('id')}", where)
        image_id = _int_id(ann["image_id"], f"the image_id of annotation {ann.get('id')}", where)
        if image_id not in sizes:
            raise InputError(f"annotation {ann.get('id')} in {where} refers to image {image_id}, which is not in "
                             "'images'; add that image or remove the annotation.")
        if _is_crowd(ann):
            if not skip_crowd:
                raise InputError(
                    f"annotation {ann.get('id')} of image {image_id} in {where} is a crowd/ignore region, which a "
                    "mask table cannot hold (it has no ignore regions); drop the annotations with iscrowd=1 "
                    "(or ignore=1) from the file, or import with --skip-crowd (skip_crowd=True) to leave them out.")
            crowd += 1
            continue
        by_image[image_id].append(ann)
    if crowd:
        log.warning("left out %d crowd/ignore annotations of %s (a mask table has no ignore regions)", crowd, where)
    return by_image


def _rle_runs(counts: bytes) -> np.ndarray | None:
    """The run lengths of a COCO compressed RLE string (pycocotools' ``rleFrString``), or None if
    the string is not one (characters outside '0'..'o', a value cut off, an absurdly long value)."""
    c = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if c.min() < 0 or c.max() > 63 or c[-1] & 0x20:
        return None
    ends = np.flatnonzero((c & 0x20) == 0)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 8:  # 8 x 5 bits already exceed any 32-bit run length pycocotools writes
        return None
    k = np.arange(c.size) - np.repeat(starts, lengths)
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    negative = (c[ends] & 0x10) != 0
    x[negative] -= np.left_shift(np.int64(1), 5 * lengths[negative])
    runs = x.copy()
    runs[1::2] = np.cumsum(x[1::2])  # from the 4th value on, each is a delta to the one two before
    if runs.size > 2:
        runs[2::2] = np.cumsum(x[2::2])
    return runs


def _rle_problem(seg: Mapping[str, Any], h: int, w: int) -> str | None:
    """Why an RLE segmentation does not describe an (h, w) mask, or None when it does."""
    size = seg.get("size", [h, w])
    if not (isinstance(size, list | tuple) and len(size) == 2 and list(size) == [h, w]):
        return f"has an RLE of size {size!r}, but its image is {h}x{w} (height x width)"
    counts = seg["counts"]
    if isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            return "has RLE counts that are not all non-negative integers"
        runs = np.asarray(counts, dtype=np.int64)
    else:
        raw = counts.encode("utf-8", "replace") if isinstance(counts, str) else counts
        decoded = _rle_runs(bytes(raw)) if isinstance(raw, bytes | bytearray) else None
        if decoded is None or (decoded < 0).any():
            return "has compressed RLE counts that are not a valid COCO RLE string"
        runs = decoded
    total = int(runs.sum())
    if total != h * w:
        return f"has an RLE whose runs cover {total:,} pixels, but its image is {w}x{h} ({h * w:,} pixels)"
    return None


def _polygon_problem(polygons: list[Any], h: int, w: int) -> str | None:
    """Why COCO polygons do not fit an (h, w) image, or None. Coordinates may stray a little
    outside the image (common in real files) but not so far that rasterizing them blows up."""
    limit = 2.0 * max(h, w)
    for poly in polygons:
        if not isinstance(poly, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in poly):
            return "has polygons that are not lists of numbers"
        if any(not -limit <= v <= limit for v in poly):  # also refuses NaN and infinities
            return f"has polygon coordinates far outside its {w}x{h} image"
    return None


def _segmentation_rle(ann: Mapping[str, Any], h: int, w: int, where: str) -> bytes:
    """Compressed RLE of one annotation, after checking it fits its (h, w) image."""
    seg = ann["segmentation"]
    what = f"annotation {ann.get('id')} in {where}"
    if isinstance(seg, Mapping) and "counts" in seg:
        problem = _rle_problem(seg, h, w)
    elif isinstance(seg, list):
        problem = _polygon_problem(seg, h, w)
    else:
        problem = f"has a segmentation of type {type(seg).__name__}, neither polygons nor RLE"
    if problem is not None:
        raise InputError(f"{what} {problem}; fix or drop the annotation.")
    return from_coco_segmentation(dict(seg) if isinstance(seg, Mapping) else seg, h, w)


def _ann_fields(ann: Mapping[str, Any], default_origin: str) -> dict[str, Any]:
    level = ann.get("level")
    is_part = ann.get("is_part", None if level is None else bool(level > 0))
    instance = ann.get("instance_id", ann.get("object_id"))
    origin = ann.get("origin", default_origin)
    return {"granularity": ann.get("granularity"), "instance_id": instance, "is_part": is_part,
            "origin": origin, "score": float(ann.get("score", 1.0))}


def _masks_of(anns: Sequence[Mapping[str, Any]], h: int, w: int, default_origin: str,
              where: str) -> list[dict[str, Any]]:
    counts = [_segmentation_rle(a, h, w, where) for a in anns]
    areas, boxes = rle_areas(counts, h, w), rle_bboxes(counts, h, w)
    return [
        mask_record(c, box, area, **_ann_fields(a, default_origin))
        for c, box, area, a in zip(counts, boxes, areas, anns, strict=True)
    ]


def _image_uri(image_root: str | None, file_name: Any, what: str) -> str:
    """Where an image lives: an absolute path or URI is taken as given (``export-coco`` writes
    those); a relative name is joined under ``image_root`` and must stay inside it."""
    if isinstance(file_name, str) and "\x00" not in file_name and "\\" not in file_name \
            and (file_name.startswith("/") or storage.is_remote(file_name)):
        if ".." in file_name.split("/"):
            raise InputError(f"{what} {file_name!r} has a '..' component; give the image's path without '..'.")
        return file_name
    if image_root:
        return safe_join(image_root, file_name, what=what)
    relative_parts(file_name, what=what)
    return str(file_name)


def coco_to_table(
    coco: Mapping[str, Any],
    *,
    image_root: str | None = None,
    producer_config_hash: str = "coco-import",
    origin: str = "import",
    where: str = "the COCO file",
    skip_crowd: bool = False,
) -> pa.Table:
    """A mask table (one ``ok`` row per COCO image) from a COCO instance dict.

    ``image_root`` joined with each relative ``file_name`` is the row's ``image_uri`` (absolute
    paths / URIs are kept; ``..`` is refused); ``origin`` is used for annotations that carry none.
    The file is validated first, each problem one :class:`InputError` sentence naming the id:
    image and annotation ids unique integers, sizes positive, every annotation's ``image_id`` a
    known image, every RLE of its image's size with runs summing to height x width.

    Crowd regions (``iscrowd: 1`` or ``ignore: 1``) are *refused*: the mask table has no ignore
    regions (schema.py), and importing them as masks would teach "this blob is one object";
    ``skip_crowd=True`` leaves them out instead (counted in a warning).
    """
    _require(coco, ("images", "annotations"), "the top level", where)
    sizes = _check_images(coco["images"], where)
    by_image = _group_annotations(coco["annotations"], sizes, where, skip_crowd)
    rows = []
    for img in coco["images"]:
        image_id = int(img["id"])
        h, w = sizes[image_id]
        uri = _image_uri(image_root, img["file_name"], f"the file_name of image {image_id} in {where}")
        rows.append(image_row(image_id=image_id, image_uri=uri, producer_config_hash=producer_config_hash,
                              height=h, width=w, masks=_masks_of(by_image.get(image_id, []), h, w, origin, where)))
    return rows_to_table(rows)


def _official_origin(ann: Mapping[str, Any]) -> str:
    if ann.get("is_divide"):
        return "divide"
    if ann.get("is_conquer"):
        return "conquer"
    return "part"


def official_json_to_row(doc: Mapping[str, Any], *, image_root: str | None, where: str) -> dict[str, Any]:
    """One mask-table row from one per-image JSON document of the official release (validated
    like :func:`coco_to_table`: positive size, unique annotation ids, RLEs of the image's size)."""
    _require(doc, ("image", "annotations"), "the top level", where)
    img = doc["image"]
    _require(img, ("id", "file_name", "height", "width"), "the image entry", where)
    image_id = _int_id(img["id"], "the image id", where)
    h, w = _image_size(img, where)
    _check_annotation_ids(doc["annotations"], where)
    anns = [dict(a, origin=_official_origin(a)) for a in doc["annotations"]]
    uri = _image_uri(image_root, img["file_name"], f"the file_name of image {image_id} in {where}")
    return image_row(image_id=image_id, image_uri=uri, producer_config_hash="official-unsamv2",
                     height=h, width=w, masks=_masks_of(anns, h, w, "part", where))


def import_official_dir(uri: str, *, image_root: str | None = None) -> pa.Table:
    """A mask table from a folder (or s3:// prefix) of the official release's per-image JSON files."""
    files = [f for f in storage.iter_files(uri) if f.endswith(".json")]
    if not files:
        raise InputError(f"{uri} contains no .json files; give the folder the official mining code wrote.")
    rows = [official_json_to_row(load_json(f), image_root=image_root, where=f) for f in files]
    return rows_to_table(sorted(rows, key=lambda r: r["image_id"]))


def write_json(uri: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``uri`` atomically (local or s3://)."""
    storage.write_text(uri, json.dumps(obj))
