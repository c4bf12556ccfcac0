"""A tiny mask table made from procedural scenes' exact ground truth (no mining needed), for the
training, Ray Train and mine-and-train tests."""

from __future__ import annotations

import os


def write_scene_table(root: str, n: int = 4, seed: int = 7, size: int = 96, shard_size: int = 2,
                      val_fraction: float = 0.25) -> dict[str, str]:
    """Scenes as PNG files plus a mask table of all their nodes (with g) and a train/val split."""
    from PIL import Image

    from unsamv2.data.coco import coco_to_table
    from unsamv2.data.shards import write_table
    from unsamv2.data.stats import compute_stats
    from unsamv2.scenes import iter_scenes, scene_to_coco

    images_dir = os.path.join(root, "images")
    os.makedirs(images_dir, exist_ok=True)
    images, annotations, first = [], [], 1
    for i, scene in enumerate(iter_scenes(n, seed, size)):
        name = f"scene_{i:03d}.png"
        Image.fromarray(scene.image).save(os.path.join(images_dir, name))
        entry, anns = scene_to_coco(scene, i + 1, first, name)
        first += len(anns)
        images.append(entry)
        annotations += anns
    coco = {"images": images, "annotations": annotations}
    table_uri = os.path.join(root, "table")
    write_table(table_uri, coco_to_table(coco, image_root=images_dir, origin="gt"), shard_size=shard_size)
    compute_stats(table_uri, os.path.join(table_uri, "stats"), val_fraction=val_fraction)
    return {"table": table_uri, "images": images_dir, "coco": coco}

