"""COCO JSON interop for mask tables, and import of the official release's per-image JSON layout.

COCO export keeps the granularity fields: every annotation carries ``granularity``,
``instance_id``, ``is_part``, ``origin`` and ``score`` next to the standard ``segmentation``
(compressed RLE ``{"size": [H, W], "counts": str}``), ``bbox`` (x, y, w, h), ``area`` and
``iscrowd``. Import accepts any COCO instance file (polygons, uncompressed or compressed RLE);
granularity fields are taken when present (also the procedural scenes' ``object_id`` / ``level``).

The official UnSAMv2 mining code writes one JSON per image: ``{"image": {id, file_name, height,
width, ...}, "annotations": [{segmentation, bbox, area, granularity, instance_id, is_part,
is_divide, is_conquer, ...}], ...}``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from unsamv2.data import storage
from unsamv2.data.rle import from_coco_segmentation, rle_areas, rle_bboxes, to_coco_segmentation
from unsamv2.data.schema import STATUS_OK, image_row, mask_record, rows_to_table
from unsamv2.errors import InputError

CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}


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
    images, annotations = [], []
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


def _require(obj: Mapping[str, Any], keys: Iterable[str], what: str, where: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InputError(f"{what} in {where} lacks the fields {missing}; it is not in COCO format.")


def _ann_fields(ann: Mapping[str, Any], default_origin: str) -> dict[str, Any]:
    level = ann.get("level")
    is_part = ann.get("is_part", None if level is None else bool(level > 0))
    instance = ann.get("instance_id", ann.get("object_id"))
    origin = ann.get("origin", default_origin)
    return {"granularity": ann.get("granularity"), "instance_id": instance, "is_part": is_part,
            "origin": origin, "score": float(ann.get("score", 1.0))}


def _masks_of(anns: list[Mapping[str, Any]], h: int, w: int, default_origin: str) -> list[dict[str, Any]]:
    counts = [from_coco_segmentation(a["segmentation"], h, w) for a in anns]
    areas, boxes = rle_areas(counts, h, w), rle_bboxes(counts, h, w)
    return [
        mask_record(c, box, area, **_ann_fields(a, default_origin))
        for c, box, area, a in zip(counts, boxes, areas, anns, strict=True)
    ]


def coco_to_table(
    coco: Mapping[str, Any],
    *,
    image_root: str | None = None,
    producer_config_hash: str = "coco-import",
    origin: str = "import",
    where: str = "the COCO file",
) -> pa.Table:
    """A mask table (one ``ok`` row per COCO image) from a COCO instance dict.

    ``image_uri`` is ``image_root`` joined with each ``file_name`` (or the bare file name);
    ``origin`` is used for annotations that carry none.
    """
    _require(coco, ("images", "annotations"), "the top level", where)
    by_image: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for ann in coco["annotations"]:
        _require(ann, ("image_id", "segmentation"), f"annotation {ann.get('id')}", where)
        by_image[ann["image_id"]].append(ann)
    rows = []
    for img in coco["images"]:
        _require(img, ("id", "file_name", "height", "width"), f"image {img.get('id')}", where)
        h, w = int(img["height"]), int(img["width"])
        uri = storage.join(image_root, img["file_name"]) if image_root else img["file_name"]
        rows.append(image_row(image_id=img["id"], image_uri=uri, producer_config_hash=producer_config_hash,
                              height=h, width=w, masks=_masks_of(by_image.get(img["id"], []), h, w, origin)))
    return rows_to_table(rows)


def _official_origin(ann: Mapping[str, Any]) -> str:
    if ann.get("is_divide"):
        return "divide"
    if ann.get("is_conquer"):
        return "conquer"
    return "part"


def official_json_to_row(doc: Mapping[str, Any], *, image_root: str | None, where: str) -> dict[str, Any]:
    """One mask-table row from one per-image JSON document of the official release."""
    _require(doc, ("image", "annotations"), "the top level", where)
    img = doc["image"]
    _require(img, ("id", "file_name", "height", "width"), "the image entry", where)
    anns = [dict(a, origin=_official_origin(a)) for a in doc["annotations"]]
    h, w = int(img["height"]), int(img["width"])
    uri = storage.join(image_root, img["file_name"]) if image_root else img["file_name"]
    return image_row(image_id=img["id"], image_uri=uri, producer_config_hash="official-unsamv2",
                     height=h, width=w, masks=_masks_of(anns, h, w, "part"))


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
