"""Write procedural scenes as a COCO dataset (PNG images + one annotations JSON), locally or to s3://.

Layout::

    out_dir/images/scene_00000.png ...
    out_dir/annotations.json

Every annotation is one hierarchy node, with the standard COCO fields (compressed-RLE
``segmentation``, ``area``, ``bbox`` in (x, y, w, h), ``iscrowd`` 0, ``category_id`` 1) plus
``parent_id`` (annotation id of the parent, null for objects), ``object_id`` (annotation id of the
root object), ``level`` (0 object, 1 part, ...) and ``granularity`` (docs/architecture.md#mining-granularity).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from unsamv2.data import storage
from unsamv2.data.rle import encode_rles, rle_areas, rle_bboxes, to_coco_segmentation
from unsamv2.errors import StorageError
from unsamv2.scenes.config import GENERATOR_VERSION, Scene, SceneConfig
from unsamv2.scenes.generator import check_size, iter_scenes

CATEGORIES = [{"id": 1, "name": "object"}]


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def scene_to_coco(scene: Scene, image_id: int, first_annotation_id: int, file_name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The COCO ``images`` entry and ``annotations`` of one scene.

    Annotation ids are ``first_annotation_id + node_id - 1``, so they are unique across a dataset
    when each scene starts after the previous one's last id.
    """
    h, w = scene.height, scene.width
    image = {"id": int(image_id), "file_name": file_name, "height": h, "width": w, "scene_seed": int(scene.seed)}
    if not scene.nodes:
        return image, []
    counts = encode_rles(np.stack([n.mask for n in scene.nodes]))
    areas, boxes = rle_areas(counts, h, w), rle_bboxes(counts, h, w)
    base = int(first_annotation_id) - 1
    annotations = []
    for node, rle, area, box in zip(scene.nodes, counts, areas, boxes, strict=True):
        annotations.append(
            {
                "id": base + node.node_id,
                "image_id": int(image_id),
                "category_id": 1,
                "segmentation": to_coco_segmentation(rle, h, w),
                "area": int(area),
                "bbox": [float(v) for v in box],
                "iscrowd": 0,
                "parent_id": None if node.parent_id is None else base + node.parent_id,
                "object_id": base + node.object_id,
                "level": int(node.level),
                "granularity": float(node.granularity),
            }
        )
    return image, annotations


def _prepare_output(out_dir: str) -> None:
    """Create ``out_dir/images``; a local folder that cannot be written is a StorageError now."""
    storage.makedirs(storage.join(out_dir, "images"))
    if not storage.is_remote(out_dir) and not os.access(storage.join(out_dir, "images"), os.W_OK):
        raise StorageError(f"cannot write to {out_dir} (permission denied); choose a writable output folder.")


def write_scene_dataset(
    out_dir: str,
    n: int,
    seed: int,
    size: int = 512,
    *,
    config: SceneConfig | None = None,
    on_scene: Callable[[int, Scene], None] | None = None,
) -> str:
    """Generate scenes 0..n-1 of ``seed`` and write them as a COCO dataset under ``out_dir``.

    ``out_dir`` is a local folder or an ``s3://`` prefix. ``on_scene(i, scene)`` is called after
    each scene is written (e.g. to advance a progress bar). Returns the annotations file's URI.
    """
    scenes = iter_scenes(n, seed, check_size(size), config)
    _prepare_output(out_dir)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, scene in enumerate(scenes):
        file_name = f"images/scene_{i:05d}.png"
        storage.write_bytes(storage.join(out_dir, *file_name.split("/")), encode_png(scene.image))
        image, anns = scene_to_coco(scene, i + 1, len(annotations) + 1, file_name)
        images.append(image)
        annotations.extend(anns)
        if on_scene is not None:
            on_scene(i, scene)
    cfg = config if config is not None else SceneConfig()
    info = {
        "description": "unsamv2 procedural hierarchical scenes",
        "generator": "unsamv2.scenes",
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "size": int(size),
        "n": int(n),
        "config": asdict(cfg),
    }
    coco = {"info": info, "images": images, "annotations": annotations, "categories": CATEGORIES}
    uri = storage.join(out_dir, "annotations.json")
    storage.write_text(uri, json.dumps(coco))
    return uri
