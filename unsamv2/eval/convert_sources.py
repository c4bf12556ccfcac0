"""Readers of the dataset-specific annotation files (SBD and PascalPart ``.mat``, ADE20K instance
PNGs, PartImageNet label PNGs, SA-1B per-image JSON) for the converters in ``scripts/convert/``.

SA-1B, PartImageNet and PASCAL-Part follow the official UnSAMv2 evaluation's dataset loaders
(``evaluation/interactive/isegm/data/datasets/*`` of the release), with seeded randomness:

- SA-1B: the first 1000 images (sorted by name), at most 5 random pairwise non-overlapping
  masks of at least 1 pixel per image (:func:`pick_disjoint`).
- PartImageNet: one object per image and part label of the PNG label maps, the background
  id (40) included, 0 excluded (:func:`partimagenet_parts`).
- PASCAL-Part: every part of every object of the ``val`` split, then a random 10% of them
  (:func:`convert_pascal_part`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unsamv2.data.paths import safe_join
from unsamv2.errors import InputError
from unsamv2.eval.convert import CocoBuilder, image_size, instance_masks, place_image

SA1B_IMAGES = 1000  # the official loader's num_images
SA1B_MASKS = 5  # masks per image, pairwise non-overlapping
PASCAL_PART_FRACTION = 0.1  # the official loader keeps int(n / 10) of the val parts


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


def pick_disjoint(masks: Sequence[np.ndarray], k: int, rng: np.random.Generator) -> list[int]:
    """Indices of at most ``k`` pairwise non-overlapping masks ((H, W) bool each), in draw order.

    The official SA-1B loader's draw: up to ``2 * len(masks)`` tries, each picks one of the
    masks not taken yet uniformly at random and takes it when it overlaps none taken so far;
    it stops at ``min(k, len(masks))`` masks. (The official code then indexes the annotation
    list with positions of its shrinking working list, so the masks it keeps can differ from
    the ones it checked; here the checked masks are the kept ones.)
    """
    remaining = list(range(len(masks)))
    chosen: list[int] = []
    union: np.ndarray | None = None
    for _ in range(2 * len(masks)):
        if len(chosen) >= min(k, len(masks)):
            break
        j = int(rng.integers(len(remaining)))
        mask = np.asarray(masks[remaining[j]], dtype=bool)
        if union is None or not np.any(mask & union):
            chosen.append(remaining.pop(j))
            union = mask.copy() if union is None else union | mask
    return chosen


class _LazyMasks(Sequence):
    """(H, W) bool masks decoded from compressed RLE counts on first access."""

    def __init__(self, counts: list[bytes], height: int, width: int) -> None:
        self.counts, self.height, self.width = counts, height, width
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]
        from unsamv2.data.rle import decode_rle

        if i not in self._cache:
            self._cache[i] = decode_rle(self.counts[i], self.height, self.width)
        return self._cache[i]


def sa1b_selection(anns: list[dict[str, Any]], height: int, width: int, max_masks: int | None,
                   non_overlapping: bool, rng: np.random.Generator) -> list[int]:
    """Indices into ``anns`` (SA-1B annotations with RLE ``segmentation``) to keep, ascending:
    masks of at least 1 pixel, then at most ``max_masks`` (None: all) drawn at random,
    pairwise non-overlapping when ``non_overlapping``."""
    from unsamv2.data.rle import from_coco_segmentation, rle_areas

    counts = [from_coco_segmentation(a["segmentation"], height, width) for a in anns]
    valid = [i for i, area in enumerate(rle_areas(counts, height, width)) if area >= 1] if counts else []
    if max_masks is None:
        return valid
    if non_overlapping:
        picked = pick_disjoint(_LazyMasks([counts[i] for i in valid], height, width), max_masks, rng)
    else:
        picked = list(rng.choice(len(valid), size=min(max_masks, len(valid)), replace=False))
    return sorted(valid[int(j)] for j in picked)


def convert_sa1b(src_dir: str | Path, out_dir: str | Path, *, mode: str = "copy",
                 max_images: int | None = SA1B_IMAGES, max_masks: int | None = SA1B_MASKS,
                 non_overlapping: bool = True, seed: int = 0) -> CocoBuilder:
    """SA-1B (``sa_N.jpg`` + ``sa_N.json`` with RLE annotations) into our format, as the official
    evaluation samples it: the first ``max_images`` images by name (1000; None: all), at most
    ``max_masks`` random masks per image (5; None: all), pairwise non-overlapping unless
    ``non_overlapping`` is False. Image k's draw is seeded by ``(seed, k)``."""
    builder = CocoBuilder(kind="object", description="SA-1B", source=str(src_dir))
    for k, (image_path, doc) in enumerate(iter_sa1b(src_dir)):
        if max_images is not None and k >= max_images:
            break
        h, w = image_size(image_path)
        anns = doc.get("annotations", [])
        keep = sa1b_selection(anns, h, w, max_masks, non_overlapping, np.random.default_rng([seed, k]))
        image_id = builder.add_image(place_image(image_path, out_dir, image_path.name, mode), h, w,
                                     source_id=doc.get("image", {}).get("image_id"))
        for i in keep:
            builder.add_segmentation(image_id, anns[i]["segmentation"], source_id=anns[i].get("id"))
    if not builder.images:
        raise InputError(f"no sa_*.json files in {src_dir}; point to an extracted SA-1B tar folder.")
    builder.write(out_dir)
    return builder


def partimagenet_parts(values: np.ndarray) -> tuple[list[tuple[int, np.ndarray]], None]:
    """Objects of a PartImageNet PNG label map ((H, W), or (H, W, 3) read from channel 0): one
    per label value present, 0 excluded and the background id 40 included, as the official
    loader does (RITM's ``get_labels_with_sizes``); a label's whole region is one mask, not
    split into connected components. No ignore region."""
    v = values if values.ndim == 2 else values[..., 0]
    return [(int(i), v == i) for i in np.unique(v) if int(i) != 0], None


def pascal_part_names(src_dir: str | Path, split: str) -> list[str]:
    """Image names of a PASCAL-Part split: ``ImageSets/Main/<split>.txt`` (the official layout)
    or ``<split>.txt`` in ``src_dir``; ``split == "all"``: every ``Annotations_Part/*.mat``."""
    src = Path(src_dir)
    if split == "all":
        return sorted(p.stem for p in (src / "Annotations_Part").glob("*.mat"))
    for candidate in (src / "ImageSets" / "Main" / f"{split}.txt", src / f"{split}.txt"):
        if candidate.is_file():
            return [n.strip() for n in candidate.read_text().split() if n.strip()]
    raise InputError(f"no split list {split}.txt in {src}/ImageSets/Main or {src}; use --split all for every .mat.")


def convert_pascal_part(src_dir: str | Path, out_dir: str | Path, *, split: str = "val",
                        fraction: float = PASCAL_PART_FRACTION, seed: int = 0, include_objects: bool = False,
                        mode: str = "copy", max_images: int | None = None) -> CocoBuilder:
    """PASCAL-Part (``JPEGImages/<name>.jpg`` + ``Annotations_Part/<name>.mat``) into our format,
    as the official evaluation samples it: every part of every object of the ``split`` images
    (the first ``max_images``), then a seeded random ``int(n * fraction)`` of those n parts
    (0.1; 1.0 keeps all). Images with no part kept are left out. Names are checked with
    ``safe_join`` before anything is read or placed."""
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction must be in (0, 1], got {fraction}.")
    src = Path(src_dir)
    names = pascal_part_names(src, split)[:max_images]
    what = f"entry of the {split} split list"  # refuse absolute names and '..'
    files = [(safe_join(str(src / "JPEGImages"), f"{n}.jpg", what=what),
              safe_join(str(src / "Annotations_Part"), f"{n}.mat", what=what)) for n in names]
    parts = [(k, j) for k, (_, mat) in enumerate(files)
             for j in range(len(pascal_part_masks(mat, include_objects=include_objects)))]
    count = len(parts) if fraction >= 1.0 else int(len(parts) * fraction)
    if count == 0:
        raise InputError(f"no part left to evaluate: {len(parts)} parts in {len(names)} images, fraction {fraction}.")
    keep = sorted(parts[int(i)] for i in np.random.default_rng(seed).choice(len(parts), size=count, replace=False))
    builder = CocoBuilder(kind="part", description=f"PASCAL-Part {split}", source=str(src))
    for k in sorted({k for k, _ in keep}):
        image = Path(files[k][0])
        h, w = image_size(image)
        image_id = builder.add_image(place_image(image, out_dir, image.name, mode), h, w, source_name=names[k])
        masks = pascal_part_masks(files[k][1], include_objects=include_objects)
        for j in (j for kk, j in keep if kk == k):
            builder.add_mask(image_id, masks[j][1], part=masks[j][0])
    builder.write(out_dir)
    return builder
