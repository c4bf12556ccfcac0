"""Readers of the dataset-specific annotation files (SBD and PascalPart ``.mat``, ADE20K instance
PNGs, SA-1B per-image JSON) for the converters in ``scripts/convert/``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from unsamv2.data.paths import safe_join
from unsamv2.errors import InputError
from unsamv2.eval.convert import CocoBuilder, image_size, instance_masks, place_image


def sbd_instances(mat_path: str | Path) -> tuple[list[tuple[int, np.ndarray]], np.ndarray | None]:
    """Instances of an SBD ``inst/<name>.mat`` (``GTinst.Segmentation``: 0 background, 1..N
    instances, 255 unlabeled boundary -> ignore)."""
    from scipy.io import loadmat

    gt = loadmat(str(mat_path), squeeze_me=True, struct_as_record=False)["GTinst"]
    return instance_masks(np.asarray(gt.Segmentation, dtype=np.int64), background=(0,), ignore=(255,))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel()) if value.dtype == object else ([] if value.size == 0 else [value])
    return [value]


def _field(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, dict) else getattr(obj, name, None)


def pascal_part_masks(mat_path: str | Path, *, include_objects: bool = False) -> list[tuple[str, np.ndarray]]:
    """Masks of a PASCAL-Part ``Annotations_Part/<name>.mat``: every part of every object
    (``anno.objects[i].parts[j].mask``) named ``<class>/<part>``; with ``include_objects`` also the
    object masks (``anno.objects[i].mask``) named ``<class>``."""
    from scipy.io import loadmat

    anno = loadmat(str(mat_path), squeeze_me=True, struct_as_record=False)["anno"]
    out = []
    for obj in _as_list(_field(anno, "objects")):
        cls = str(_field(obj, "class"))
        if include_objects:
            out.append((cls, np.asarray(_field(obj, "mask")).astype(bool)))
        for part in _as_list(_field(obj, "parts")):
            out.append((f"{cls}/{_field(part, 'part_name')}", np.asarray(_field(part, "mask")).astype(bool)))
    return out


def ade20k_instances(png_path: str | Path) -> list[tuple[int, np.ndarray]]:
    """Instances of an ADE20K instance PNG (``annotations_instance/*.png``): R = category id,
    G = instance id; each (R, G) pair with G > 0 is one instance."""
    from unsamv2.eval.convert import read_label_image

    rgb = read_label_image(png_path)
    if rgb.ndim != 3:
        raise InputError(f"{png_path} is not an RGB instance PNG (R = category, G = instance).")
    key = rgb[..., 0] * 256 + rgb[..., 1]
    keys = [int(k) for k in np.unique(key[rgb[..., 1] > 0])]
    return [(k, key == k) for k in keys]


def iter_sa1b(src_dir: str | Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(image path, parsed JSON) of every ``sa_*.json`` + image pair in an SA-1B folder, sorted.

    The JSON's ``image.file_name`` must be relative to the folder (no absolute name, no ``..``)."""
    src = Path(src_dir)
    for js in sorted(src.glob("sa_*.json")):
        doc = json.loads(js.read_text())
        name = doc.get("image", {}).get("file_name") or f"{js.stem}.jpg"
        yield Path(safe_join(str(src), name, what=f"image file_name in {js}")), doc


def convert_sa1b(src_dir: str | Path, out_dir: str | Path, *, mode: str = "copy", max_images: int | None = None,
                 max_masks: int | None = None, seed: int = 0) -> CocoBuilder:
    """SA-1B (``sa_N.jpg`` + ``sa_N.json`` with RLE annotations) into our format; ``max_masks``
    keeps a seeded random subset of masks per image (all by default)."""
    builder = CocoBuilder(kind="object", description="SA-1B", source=str(src_dir))
    rng = np.random.default_rng(seed)
    for k, (image_path, doc) in enumerate(iter_sa1b(src_dir)):
        if max_images is not None and k >= max_images:
            break
        h, w = image_size(image_path)
        image_id = builder.add_image(place_image(image_path, out_dir, image_path.name, mode), h, w,
                                     source_id=doc.get("image", {}).get("image_id"))
        anns = doc.get("annotations", [])
        if max_masks is not None and len(anns) > max_masks:
            anns = [anns[i] for i in sorted(rng.choice(len(anns), size=max_masks, replace=False))]
        for ann in anns:
            builder.add_segmentation(image_id, ann["segmentation"], source_id=ann.get("id"))
    if not builder.images:
        raise InputError(f"no sa_*.json files in {src_dir}; point to an extracted SA-1B tar folder.")
    builder.write(out_dir)
    return builder
