"""Converters from public benchmark layouts to our COCO evaluation format (``datasets.py``).

Everything here works on a LOCAL copy of a dataset (nothing is downloaded) and writes::

    out/annotations.json   # COCO: images (+ ignore_segmentation), annotations (RLE), info.unsamv2_kind
    out/images/...         # the images, copied (default) or symlinked

The per-dataset command-line wrappers live in ``scripts/convert/``; the reusable pieces are:

- :class:`CocoBuilder` — collects images and masks, writes the JSON;
- :func:`place_image` — copies/symlinks an image into ``out/images``;
- :func:`read_label_image` — a mask/label PNG (or BMP) as an integer array;
- :func:`threshold_mask` — RITM's binary-mask rule (> 128 object, == 128 ignore);
- :func:`instance_masks` — an instance-id map to one mask per id (with ignore values);
- :func:`convert_paired_folders` — images folder + masks folder (GrabCut, Berkeley, DAVIS, ...);
- :func:`convert_coco_json` — an existing COCO-style file, made class-agnostic (COCO, LVIS,
  EntitySeg, PartImageNet).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from unsamv2.data.paths import relative_parts, safe_join
from unsamv2.data.rle import (
    encode_rle,
    from_coco_segmentation,
    rle_areas,
    rle_bboxes,
    to_coco_segmentation,
)
from unsamv2.errors import InputError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MaskDecoder = Callable[[np.ndarray], tuple[list[tuple[int, np.ndarray]], np.ndarray | None]]


class CocoBuilder:
    """Accumulates a COCO evaluation file. Ids start at 1; masks are stored as compressed RLE."""

    def __init__(self, *, kind: str = "object", description: str = "", source: str = "") -> None:
        if kind not in ("object", "part"):
            raise InputError(f"kind must be 'object' or 'part', got {kind!r}.")
        self.info = {"description": description, "source": source, "unsamv2_kind": kind,
                     "converter": "unsamv2.eval.convert"}
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self._sizes: dict[int, tuple[int, int]] = {}

    def add_image(self, file_name: str, height: int, width: int, *, ignore: np.ndarray | None = None,
                  **extra: Any) -> int:
        """Register an image (``file_name`` relative to the output folder); returns its id."""
        image_id = len(self.images) + 1
        entry = {"id": image_id, "file_name": file_name, "height": int(height), "width": int(width), **extra}
        if ignore is not None and np.any(ignore):
            entry["ignore_segmentation"] = to_coco_segmentation(encode_rle(ignore), height, width)
        self.images.append(entry)
        self._sizes[image_id] = (int(height), int(width))
        return image_id

    def add_mask(self, image_id: int, mask: np.ndarray, *, iscrowd: bool = False, **extra: Any) -> int | None:
        """Add a (H, W) bool mask of ``image_id``; empty masks are skipped (returns None)."""
        h, w = self._sizes[image_id]
        if mask.shape != (h, w):
            raise InputError(f"a mask of shape {mask.shape} does not fit image {image_id} ({h}, {w}).")
        if not mask.any():
            return None
        return self.add_rle(image_id, encode_rle(mask), iscrowd=iscrowd, **extra)

    def add_segmentation(self, image_id: int, segmentation: Any, *, iscrowd: bool = False, **extra: Any) -> int | None:
        """Add any COCO segmentation (polygons, RLE) of ``image_id``; empty ones are skipped."""
        h, w = self._sizes[image_id]
        return self.add_rle(image_id, from_coco_segmentation(segmentation, h, w), iscrowd=iscrowd, **extra)

    def add_rle(self, image_id: int, counts: bytes, *, iscrowd: bool = False, **extra: Any) -> int | None:
        """Add compressed RLE ``counts`` of ``image_id``; empty masks are skipped."""
        h, w = self._sizes[image_id]
        area = int(rle_areas([counts], h, w)[0])
        if area == 0:
            return None
        ann_id = len(self.annotations) + 1
        self.annotations.append({
            "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": int(bool(iscrowd)),
            "segmentation": to_coco_segmentation(counts, h, w), "area": area,
            "bbox": [float(v) for v in rle_bboxes([counts], h, w)[0]], **extra})
        return ann_id

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info, "images": self.images, "annotations": self.annotations,
                "categories": [{"id": 1, "name": "object"}]}

    def write(self, out_dir: str | Path) -> Path:
        """Write ``out_dir/annotations.json``; returns its path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "annotations.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict()))
        os.replace(tmp, path)
        return path

    def summary(self) -> str:
        crowd = sum(a["iscrowd"] for a in self.annotations)
        return (f"{len(self.images)} images, {len(self.annotations) - crowd} objects, {crowd} crowd/ignore regions "
                f"(kind {self.info['unsamv2_kind']})")


def place_image(src: str | Path, out_dir: str | Path, name: str, mode: str = "copy") -> str:
    """Copy (``mode="copy"``) or symlink (``"symlink"``) ``src`` to ``out_dir/images/name``;
    returns the ``file_name`` to record ("images/<name>").

    Never writes or deletes outside ``out_dir/images``: ``name`` must be a relative name without
    ``..`` (:func:`unsamv2.data.paths.safe_join`, else :class:`InputError`); an existing link at
    the destination is replaced, never written through; and when the destination already *is* the
    source (converting a dataset into its own folder) it is left alone, so the source survives.
    """
    if mode not in ("copy", "symlink"):
        raise InputError(f"mode must be 'copy' or 'symlink', got {mode!r}.")
    src = Path(src)
    if not src.is_file():
        raise InputError(f"{src} is not a file; check the dataset layout described in the script's help.")
    images = Path(out_dir) / "images"
    images.mkdir(parents=True, exist_ok=True)
    dst = Path(safe_join(str(images), name, what="image name"))
    rel = dst.relative_to(images).as_posix()
    if dst.is_dir() and not dst.is_symlink():
        raise InputError(f"{dst} is a folder, so image {name!r} cannot be placed there; clear the output folder.")
    if dst.exists() and not dst.is_symlink() and os.path.samefile(src, dst):
        return f"images/{rel}"  # the source itself: keep it
    dst.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(src, dst, mode)
    return f"images/{rel}"


def _replace_atomically(src: Path, dst: Path, mode: str) -> None:
    """Write a copy of / link to ``src`` next to ``dst``, then rename it over ``dst`` (a link at
    ``dst`` is replaced itself; its target is untouched)."""
    tmp = dst.parent / f".{dst.name}.{os.getpid()}.tmp"
    try:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        if mode == "symlink":
            tmp.symlink_to(src.resolve())
        else:
            shutil.copyfile(src, tmp, follow_symlinks=True)
        os.replace(tmp, dst)
    finally:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()


def read_label_image(path: str | Path) -> np.ndarray:
    """A mask / label image as integers: (H, W) for grayscale or palette (indices kept), (H, W, 3)
    for RGB. Use ``[..., 0]`` to take the first channel of an RGB-saved binary mask."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("P", "L", "I", "I;16", "1"):
            return np.asarray(im, dtype=np.int64)
        return np.asarray(im.convert("RGB"), dtype=np.int64)


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file, without decoding it."""
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def threshold_mask(values: np.ndarray) -> tuple[list[tuple[int, np.ndarray]], np.ndarray | None]:
    """RITM's rule for 8-bit binary masks (GrabCut, Berkeley): > 128 object, == 128 ignore."""
    v = values if values.ndim == 2 else values[..., 0]
    ignore = v == 128
    return [(1, v > 128)], ignore if ignore.any() else None


def nonzero_mask(values: np.ndarray) -> tuple[list[tuple[int, np.ndarray]], np.ndarray | None]:
    """Any non-zero pixel is the object (DAVIS interactive masks)."""
    v = values if values.ndim == 2 else values.max(axis=-1)
    return [(1, v > 0)], None


def instance_masks(label_map: np.ndarray, background: Iterable[int] = (0,),
                   ignore: Iterable[int] = (255,)) -> tuple[list[tuple[int, np.ndarray]], np.ndarray | None]:
    """One mask per instance id of a (H, W) integer map; ``ignore`` values become the ignore mask."""
    if label_map.ndim != 2:
        raise InputError(f"an instance map must be (H, W), got shape {label_map.shape}.")
    ignore_mask = np.isin(label_map, list(ignore))
    skip = set(background) | set(ignore)
    ids = [int(i) for i in np.unique(label_map) if int(i) not in skip]
    return [(i, label_map == i) for i in ids], ignore_mask if ignore_mask.any() else None


def _stem_index(folder: Path, exts: Iterable[str]) -> dict[str, Path]:
    exts = tuple(e.lower() for e in exts)
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in exts}


def convert_paired_folders(images_dir: str | Path, masks_dir: str | Path, out_dir: str | Path, *,
                           decode: MaskDecoder, kind: str = "object", description: str = "",
                           mode: str = "copy", mask_exts: Iterable[str] = (".png", ".bmp"),
                           max_images: int | None = None) -> CocoBuilder:
    """Images and masks paired by file stem (``img/x.jpg`` + ``gt/x.png``) into our format.

    ``decode(values) -> ([(instance_id, mask)], ignore | None)`` turns a mask file's values into
    objects (e.g. :func:`threshold_mask`, :func:`instance_masks`). Images without a mask are
    skipped; a mask without an image is an error.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise InputError(f"{d} is not a folder; check the dataset layout described in the script's help.")
    images = _stem_index(images_dir, IMAGE_EXTS)
    masks = _stem_index(masks_dir, mask_exts)
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise InputError(f"masks without an image in {images_dir}: {orphans[:5]}; fix the layout or the paths.")
    builder = CocoBuilder(kind=kind, description=description, source=str(images_dir.parent))
    for stem in sorted(masks)[:max_images]:
        values = read_label_image(masks[stem])
        h, w = image_size(images[stem])
        if values.shape[:2] != (h, w):
            raise InputError(f"{masks[stem]} is {values.shape[1]}x{values.shape[0]} but its image is {w}x{h}.")
        objects, ignore = decode(values)
        file_name = place_image(images[stem], out_dir, images[stem].name, mode)
        image_id = builder.add_image(file_name, h, w, ignore=ignore, source_name=stem)
        for instance_id, mask in objects:
            builder.add_mask(image_id, mask, instance_id=instance_id)
    builder.write(out_dir)
    return builder


def convert_coco_json(src_json: str | Path, image_root: str | Path, out_dir: str | Path, *, kind: str = "object",
                      description: str = "", mode: str = "copy", max_images: int | None = None,
                      file_name_of: Callable[[dict[str, Any]], str] | None = None) -> CocoBuilder:
    """A COCO-style instance file made class-agnostic: every annotation becomes one object (crowd
    ones stay crowd), categories dropped (kept per annotation as ``source_category``).

    ``image_root``: where the images' ``file_name`` are relative to; ``file_name_of(image_entry)``
    overrides how the file name is found (LVIS has only ``coco_url``). Every name is checked
    before any image is placed: an absolute one or one with ``..`` is an :class:`InputError`
    naming the image, and nothing is written.
    """
    target = Path(out_dir) / "annotations.json"
    if target.exists() and os.path.samefile(src_json, target):
        raise InputError(f"{src_json} is the output's annotations.json, so converting would overwrite its own "
                         "input; choose another output folder.")
    src = json.loads(Path(src_json).read_text())
    if not isinstance(src, dict) or "images" not in src or "annotations" not in src:
        raise InputError(f"{src_json} is not a COCO file: it needs 'images' and 'annotations'.")
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in src["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    builder = CocoBuilder(kind=kind, description=description, source=str(src_json))
    entries = sorted(src["images"], key=lambda im: int(im["id"]))[:max_images]
    for entry, source, rel in _checked_sources(entries, image_root, src_json, file_name_of):
        file_name = place_image(source, out_dir, rel, mode)
        image_id = builder.add_image(file_name, entry["height"], entry["width"], source_id=entry["id"])
        for ann in by_image.get(int(entry["id"]), []):
            builder.add_segmentation(image_id, ann["segmentation"], iscrowd=bool(ann.get("iscrowd", 0)),
                                     source_category=ann.get("category_id"))
    builder.write(out_dir)
    return builder


def _checked_sources(entries: list[dict[str, Any]], image_root: str | Path, src_json: str | Path,
                     file_name_of: Callable[[dict[str, Any]], str] | None,
                     ) -> list[tuple[dict[str, Any], Path, str]]:
    """(entry, source path under ``image_root``, safe relative name) of every image entry; raises
    :class:`InputError` for the first name that is absolute or leaves the root."""
    out = []
    for entry in entries:
        name = file_name_of(entry) if file_name_of else entry.get("file_name")
        what = f"file_name of image {entry.get('id')} in {src_json}"
        source = Path(safe_join(str(image_root), name, what=what))  # type: ignore[arg-type]
        out.append((entry, source, "/".join(relative_parts(name, what=what))))  # type: ignore[arg-type]
    return out
