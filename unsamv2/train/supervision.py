"""Light supervision (the paper's UnSAMv2+): human masks from a COCO-format dataset as a mask table.

g for each human mask, by the same rule as mining (docs/architecture.md#mining-granularity, per part–whole group):

1. annotations that already carry ``granularity`` keep it (our procedural scenes' COCO does);
2. otherwise, when annotations carry ``parent_id``, each root and its descendants form a group;
3. otherwise the hierarchy is recovered as the miner does (docs/architecture.md#mining-relation): a mask contained
   (|a & b| / |a| > 0.8) in no other is an instance, the masks contained in it are its parts
   (a mask inside several instances joins the smallest one);

and within a group the smallest mask gets 0.1, the largest 1.0, the others linear in sqrt(area)
(:func:`unsamv2.mining.granularity.granularity_scores`); a mask alone in its group gets 1.0.
Crowd / ignore annotations (``iscrowd`` or ``ignore``) are not training targets and are dropped.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from unsamv2.data import storage
from unsamv2.data.rle import decode_rles, from_coco_segmentation
from unsamv2.errors import InputError
from unsamv2.mining.granularity import granularity_scores

SOURCE_FILE = "source.json"


def _groups_from_parents(anns: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    index = {int(a["id"]): i for i, a in enumerate(anns) if "id" in a}

    def root(i: int) -> int:
        seen = set()
        while anns[i].get("parent_id") is not None and int(anns[i]["parent_id"]) in index and i not in seen:
            seen.add(i)
            i = index[int(anns[i]["parent_id"])]
        return i

    groups: dict[int, list[int]] = {}
    for i in range(len(anns)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _groups_from_containment(masks: np.ndarray, containment: float = 0.8) -> list[list[int]]:
    n = masks.shape[0]
    flat = masks.reshape(n, -1).astype(np.float32)
    areas = flat.sum(1)
    inside = (flat @ flat.T) / np.maximum(areas[:, None], 1) > containment  # inside[a, b]: a in b
    np.fill_diagonal(inside, False)
    instances = [i for i in range(n) if not inside[i].any()]
    groups: dict[int, list[int]] = {i: [i] for i in instances}
    for j in range(n):
        if j in groups:
            continue
        owners = [i for i in instances if inside[j, i]]
        if owners:
            groups[min(owners, key=lambda i: areas[i])].append(j)
        else:
            groups[j] = [j]
    return list(groups.values())


def human_granularity(anns: Sequence[Mapping[str, Any]], height: int, width: int) -> list[float]:
    """g of each (non-crowd) annotation of one image, by the rules in the module docstring."""
    if not anns:
        return []
    if all(a.get("granularity") is not None for a in anns):
        return [float(a["granularity"]) for a in anns]
    counts = [from_coco_segmentation(a["segmentation"], height, width) for a in anns]
    masks = decode_rles(counts, height, width)
    areas = masks.reshape(len(anns), -1).sum(1)
    if any(a.get("parent_id") is not None for a in anns):
        groups = _groups_from_parents(anns)
    else:
        groups = _groups_from_containment(masks)
    out = [1.0] * len(anns)
    for group in groups:
        for i, g in zip(group, granularity_scores(areas[group].astype(np.float64)), strict=True):
            out[i] = float(g)
    return out


def human_mask_table(coco_uri: str, out_uri: str, *, image_root: str | None = None,
                     shard_size: int = 256) -> str:
    """Write the human masks of ``coco_uri`` (with g) as a mask table at ``out_uri``; returns it.

    Idempotent: an existing table made from the same file (sha256 in ``source.json``) is kept.
    """
    from unsamv2.data.coco import coco_to_table
    from unsamv2.data.shards import write_table

    raw = storage.read_bytes(coco_uri)
    digest = hashlib.sha256(raw).hexdigest()
    source = storage.join(out_uri, SOURCE_FILE)
    if storage.exists(source) and json.loads(storage.read_text(source)).get("sha256") == digest:
        return out_uri
    try:
        coco = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{coco_uri} is not valid JSON ({exc.msg}); give a COCO annotations file.") from exc
    if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
        raise InputError(f"{coco_uri} is not a COCO file: it needs 'images' and 'annotations'.")
    root = image_root if image_root is not None else json_folder(coco_uri)
    coco_to_table(coco, image_root=root, where=coco_uri, skip_crowd=True)  # validate before decoding any RLE
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        if not (ann.get("iscrowd") or ann.get("ignore")):
            by_image.setdefault(int(ann["image_id"]), []).append(ann)
    annotations = []
    for img in coco["images"]:
        anns = by_image.get(int(img["id"]), [])
        gs = human_granularity(anns, int(img["height"]), int(img["width"]))
        annotations += [dict(a, granularity=g, origin="gt") for a, g in zip(anns, gs, strict=True)]
    table = coco_to_table({"images": coco["images"], "annotations": annotations}, image_root=root,
                          producer_config_hash=f"human-coco-{digest[:12]}", origin="gt", where=coco_uri)
    write_table(out_uri, table, shard_size=shard_size)
    storage.write_text(source, json.dumps({"coco": coco_uri, "sha256": digest, "images": table.num_rows}))
    return out_uri


def json_folder(uri: str) -> str:
    """The folder of a file URI (local: absolute path), where COCO ``file_name`` entries live."""
    if storage.is_remote(uri):
        return uri.rsplit("/", 1)[0]
    import os

    return os.path.dirname(os.path.abspath(uri)) or posixpath.curdir
