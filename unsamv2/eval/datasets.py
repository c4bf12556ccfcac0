"""Evaluation datasets: COCO-format folders (local or s3://) and the built-in procedural scenes.

Our COCO convention (what ``scripts/convert/*`` write, and what :class:`CocoDataset` reads)::

    root/annotations.json      # COCO dict: images, annotations (categories optional, ignored)
    root/images/...            # image files; each image's ``file_name`` is relative to root
                               # (absolute names and '..' are refused: data.paths.safe_join)

- every annotation with ``iscrowd: 1`` or ``ignore: 1`` is *not* an object: its pixels join the
  image's ignore region (excluded from IoU and from click placement), and it is passed to COCOeval
  as a crowd region (matched detections are neither rewarded nor penalised);
- an image entry may carry ``ignore_segmentation`` (polygons or RLE): more ignore pixels, e.g. the
  unlabeled boundary band of GrabCut and SBD;
- ``info.unsamv2_kind`` is ``"object"`` (target IoU 0.90) or ``"part"`` (0.85, the paper's rule
  for PascalPart / PartImageNet); a :class:`DatasetSpec` can override it;
- annotations may carry ``granularity`` / ``level`` / ``parent_id`` (the procedural scenes do).

Each dataset yields :class:`EvalSample` per image: the image, the objects to click on (masks and
annotation ids), the ignore mask, and the COCO annotations used for whole-image AR.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from unsamv2.data import storage
from unsamv2.data.images import read_image
from unsamv2.data.paths import safe_join
from unsamv2.data.rle import decode_rle, from_coco_segmentation
from unsamv2.errors import InputError

TARGET_IOU = {"object": 0.90, "part": 0.85}


@dataclass(frozen=True, eq=False)
class EvalSample:
    """One image: ``image`` (H, W, 3) uint8 RGB; ``masks`` (N, H, W) bool objects; ``ids`` (N,)
    their annotation ids; ``ignore`` (H, W) bool or None; ``annotations`` COCO dicts (RLE) of
    every ground-truth region for AR (objects of all levels and crowd/ignore regions)."""

    image_id: int
    file_name: str
    image: np.ndarray
    masks: np.ndarray
    ids: list[int]
    ignore: np.ndarray | None
    annotations: list[dict[str, Any]] = field(repr=False)
    granularity: list[float | None] = field(default_factory=list)  # per object, when annotated
    level: list[int | None] = field(default_factory=list)  # per object, when annotated

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


class EvalDataset(Protocol):
    """What :func:`unsamv2.eval.evaluate` iterates: ``name``, ``kind``, ``version`` and samples."""

    name: str
    kind: str  # "object" | "part"
    version: str  # content hash / generator version, for the report and the history

    def __iter__(self) -> Iterator[EvalSample]: ...

    def __len__(self) -> int: ...


def target_iou_for(kind: str) -> float:
    """The paper's target IoU of a dataset kind: 0.90 for objects, 0.85 for part datasets."""
    if kind not in TARGET_IOU:
        raise InputError(f"dataset kind must be 'object' or 'part', got {kind!r}.")
    return TARGET_IOU[kind]


def _is_ignore(ann: dict[str, Any]) -> bool:
    return bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0))


def build_sample(
    image_entry: dict[str, Any],
    image: np.ndarray,
    anns: Sequence[dict[str, Any]],
    *,
    levels: Sequence[int] | None = None,
    min_area: int = 0,
    max_objects: int | None = None,
) -> EvalSample:
    """An :class:`EvalSample` from one COCO image entry, its pixels and its annotations.

    Objects are the non-crowd, non-ignore annotations (restricted to ``levels`` when given, and
    to at least ``min_area`` pixels outside the ignore region); ``max_objects`` keeps the first ones.
    """
    h, w = int(image_entry["height"]), int(image_entry["width"])
    if image.shape[:2] != (h, w):
        raise InputError(f"image {image_entry.get('file_name')} is {image.shape[1]}x{image.shape[0]} but the "
                         f"annotations say {w}x{h}; fix 'width'/'height' or the file.")
    ignore = np.zeros((h, w), dtype=bool)
    if image_entry.get("ignore_segmentation") is not None:
        ignore |= decode_rle(from_coco_segmentation(image_entry["ignore_segmentation"], h, w), h, w)
    decoded, coco_anns = [], []
    for ann in anns:
        counts = from_coco_segmentation(ann["segmentation"], h, w)
        crowd = _is_ignore(ann)
        coco_anns.append({"id": int(ann["id"]), "image_id": int(image_entry["id"]), "iscrowd": int(crowd),
                          "segmentation": {"size": [h, w], "counts": counts}})
        mask = decode_rle(counts, h, w)
        if crowd:
            ignore |= mask
        elif levels is None or ann.get("level") in levels:
            decoded.append((ann, mask))
    objects = [(a, m) for a, m in decoded if np.count_nonzero(m & ~ignore) >= max(int(min_area), 1)]
    if max_objects is not None:
        objects = objects[: int(max_objects)]
    masks = np.stack([m for _, m in objects]) if objects else np.zeros((0, h, w), dtype=bool)
    return EvalSample(
        image_id=int(image_entry["id"]), file_name=str(image_entry.get("file_name", "")), image=image,
        masks=masks, ids=[int(a["id"]) for a, _ in objects], ignore=ignore if ignore.any() else None,
        annotations=coco_anns, granularity=[a.get("granularity") for a, _ in objects],
        level=[a.get("level") for a, _ in objects])


class CocoDataset:
    """A COCO-format dataset (module docstring) read from a local folder or s3:// prefix.

    ``annotations``: URI of the JSON; ``image_root``: where ``file_name`` is relative to (default:
    the JSON's folder); ``kind``: "object" / "part" (default: ``info.unsamv2_kind``, else object).
    """

    def __init__(self, annotations: str, *, name: str | None = None, kind: str | None = None,
                 image_root: str | None = None, levels: Sequence[int] | None = None, min_area: int = 0,
                 max_images: int | None = None, max_objects: int | None = None) -> None:
        raw = storage.read_bytes(annotations)
        try:
            coco = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{annotations} is not valid JSON ({exc.msg}, line {exc.lineno}); fix the file.") from exc
        if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
            raise InputError(f"{annotations} is not a COCO file: it needs 'images' and 'annotations'.")
        self.uri = annotations
        self.version = hashlib.sha256(raw).hexdigest()[:16]
        info = coco.get("info") or {}
        self.kind = kind or info.get("unsamv2_kind", "object")
        target_iou_for(self.kind)
        self.name = name or posixpath.basename(posixpath.dirname(annotations.replace("\\", "/"))) or "coco"
        self.image_root = image_root if image_root is not None else _parent(annotations)
        self.levels, self.min_area, self.max_objects = levels, min_area, max_objects
        images = sorted(coco["images"], key=lambda im: int(im["id"]))
        self.images = images[:max_images] if max_images is not None else images
        self._anns: dict[int, list[dict[str, Any]]] = {}
        for ann in coco["annotations"]:
            self._anns.setdefault(int(ann["image_id"]), []).append(ann)

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[EvalSample]:
        for entry in self.images:
            uri = safe_join(self.image_root, entry.get("file_name"),
                            what=f"file_name of image {entry.get('id')} in {self.uri}")
            image = read_image(uri).rgb  # the project's one reader: EXIF, 16-bit, CMYK, size limits
            yield build_sample(entry, image, self._anns.get(int(entry["id"]), []), levels=self.levels,
                               min_area=self.min_area, max_objects=self.max_objects)


def _parent(uri: str) -> str:
    if storage.is_remote(uri):
        return uri.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(uri))


class SceneDataset:
    """The procedural benchmark, generated in memory (``unsamv2.scenes``); exact hierarchy.

    ``kind="object"`` evaluates the level-0 objects (target 0.90); ``kind="part"`` the parts at
    levels >= 1 (target 0.85). AR uses every node of every level as ground truth.
    """

    def __init__(self, n: int = 16, seed: int = 0, size: int = 256, *, kind: str = "object",
                 name: str | None = None, min_area: int = 64, max_objects: int | None = None) -> None:
        from unsamv2.scenes import GENERATOR_VERSION

        target_iou_for(kind)
        self.n, self.seed, self.size, self.kind = int(n), int(seed), int(size), kind
        self.name = name or f"scenes-{kind}s"
        self.version = f"scenes-v{GENERATOR_VERSION}-n{self.n}-seed{self.seed}-size{self.size}"
        self.min_area, self.max_objects = min_area, max_objects
        self.levels = (0,) if kind == "object" else (1, 2, 3)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[EvalSample]:
        from unsamv2.scenes import iter_scenes, scene_to_coco

        first = 1
        for i, scene in enumerate(iter_scenes(self.n, self.seed, self.size)):
            entry, anns = scene_to_coco(scene, i + 1, first, f"scene_{i:05d}.png")
            first += len(anns)
            yield build_sample(entry, scene.image, anns, levels=self.levels, min_area=self.min_area,
                               max_objects=self.max_objects)


def parse_scenes(spec: str) -> tuple[int, int, int]:
    """``scenes:<n>:<seed>:<size>`` -> (n, seed, size)."""
    try:
        kind, n, seed, size = spec.split(":")
        if kind != "scenes":
            raise ValueError
        return int(n), int(seed), int(size)
    except ValueError as exc:
        raise InputError(f"bad scenes benchmark {spec!r}; write scenes:<n>:<seed>:<size>, e.g. scenes:8:1000:256.") from exc


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset named in a config: a COCO annotations URI, or ``scenes:<n>:<seed>:<size>``."""

    name: str
    uri: str
    kind: str | None = None  # None: from the file (COCO) / "object" (scenes)
    image_root: str | None = None
    levels: tuple[int, ...] | None = None  # COCO only: keep objects with these ``level`` values
    max_images: int | None = None
    max_objects: int | None = None
    min_area: int = 0

    def open(self) -> EvalDataset:
        """The dataset this spec names."""
        if self.uri.startswith("scenes:"):
            n, seed, size = parse_scenes(self.uri)
            return SceneDataset(n if self.max_images is None else min(n, self.max_images), seed, size,
                                kind=self.kind or "object", name=self.name,
                                min_area=max(self.min_area, 64), max_objects=self.max_objects)
        return CocoDataset(self.uri, name=self.name, kind=self.kind, image_root=self.image_root,
                           levels=self.levels, min_area=self.min_area, max_images=self.max_images, max_objects=self.max_objects)
