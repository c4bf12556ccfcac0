"""Divide from a detector's instance candidates (the release's divide), instead of MaskCut.

The official release runs a detector (CutLER) per image and keeps its masks with score > 0.3; the
instance / part relation then acts on these overlapping candidates, so instances get *divide
parts*. A user who has such candidates gives them as a file, local or ``s3://``:

- a COCO file (``{"images": [...], "annotations": [...]}``, annotations with ``segmentation``
  (RLE or polygons) and ``score``; a missing score counts as 1.0), keyed by each image's
  ``file_name``;
- a mask table (a table root or a ``.parquet`` file, :mod:`unsamv2.data.schema`), keyed by
  ``image_uri``; each mask's ``score`` is its candidate score.

An input image matches the candidate key with which its URI shares the longest trailing path
(``s3://b/in/cats/1.jpg`` matches a key ``cats/1.jpg``, ``/data/cats/1.jpg`` or ``1.jpg``,
preferring the longer shared tail, and a key equal to the tail); a tail that several keys
share is otherwise ambiguous and never used. So
keys relative to the input root, absolute paths and URIs all work, also for a copy of the images.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from unsamv2.errors import InputError, RejectedImage

DEFAULT_MIN_SCORE = 0.3  # the release keeps detector masks with score > 0.3


@dataclass(frozen=True)
class Candidate:
    """One candidate: compressed RLE ``counts`` of an (height, width) mask and its score."""

    counts: bytes
    height: int
    width: int
    score: float


def _key_parts(uri: str) -> list[str]:
    path = uri.split("://", 1)[-1].replace("\\", "/")
    return [p for p in path.split("/") if p and p != "."]


class CandidateIndex:
    """Candidates by image key; :meth:`masks_for` returns one image's masks above the threshold."""

    def __init__(self, by_key: Mapping[str, list[Candidate]], source: str, min_score: float) -> None:
        self.by_key = {"/".join(_key_parts(k)): v for k, v in by_key.items()}
        self.source = source
        self.min_score = min_score
        self._tails: dict[str, str | None] = {}  # trailing path -> its key, None when ambiguous
        for key in self.by_key:
            parts = key.split("/")
            for start in range(len(parts)):
                tail = "/".join(parts[start:])
                self._tails[tail] = key if self._tails.get(tail, key) == key else None

    def __len__(self) -> int:
        return len(self.by_key)

    def lookup(self, image_uri: str) -> list[Candidate] | None:
        """The candidates of the key sharing the longest unambiguous trailing path with ``image_uri``."""
        parts = _key_parts(image_uri)
        for start in range(len(parts)):
            tail = "/".join(parts[start:])
            key = tail if tail in self.by_key else self._tails.get(tail)  # a key equal to the tail wins
            if key is not None:
                return self.by_key[key]
        return None

    def masks_for(self, image_uri: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(masks (K, H, W) bool, scores (K,) float32) of the image's candidates with score >
        ``min_score``. Raises :class:`RejectedImage` (``no_candidates`` / ``bad_candidates``) when
        the file has none for this image or their size differs from the decoded image."""
        from unsamv2.data.rle import decode_rle

        found = self.lookup(image_uri)
        if found is None:
            raise RejectedImage("no_candidates", f"{self.source} has no candidates for {image_uri}.")
        kept = [c for c in found if c.score > self.min_score]
        wrong = [(c.height, c.width) for c in kept if (c.height, c.width) != (height, width)]
        if wrong:
            raise RejectedImage("bad_candidates", f"candidates of {image_uri} in {self.source} are {wrong[0][1]}x"
                                f"{wrong[0][0]} but the image decodes to {width}x{height}.")
        masks = np.zeros((len(kept), height, width), dtype=bool)
        for i, c in enumerate(kept):
            masks[i] = decode_rle(c.counts, height, width)
        return masks, np.array([c.score for c in kept], dtype=np.float32)

    def check_matches(self, image_uris: Iterable[str]) -> None:
        """A clear error when none of ``image_uris`` has candidates (stops at the first that has)."""
        seen, first = 0, None
        for uri in image_uris:
            if self.lookup(uri) is not None:
                return
            seen, first = seen + 1, first or uri
        if seen:
            example = next(iter(self.by_key), "(no keys)")
            raise InputError(
                f"the candidate file {self.source} matches none of the {seen} input images (e.g. "
                f"{first} vs key {example}); key candidates by file_name relative to the input folder, or "
                "by the images' URIs.")


def _coco_candidates(coco: Mapping[str, Any], where: str) -> dict[str, list[Candidate]]:
    """Candidates by ``file_name``, validated like ``table import-coco`` (crowd regions left out)."""
    from unsamv2.data.coco import coco_to_table

    for ann in coco.get("annotations", []):
        score = ann.get("score", 1.0) if isinstance(ann, Mapping) else None
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not np.isfinite(score):
            raise InputError(f"annotation {ann.get('id') if isinstance(ann, Mapping) else ann!r} in {where} has "
                             f"score {score!r}; candidate scores must be finite numbers.")
    table = coco_to_table(coco, image_root=None, where=where, skip_crowd=True)
    names = {int(img["id"]): str(img["file_name"]) for img in coco["images"]}
    return {names[row["image_id"]]: [Candidate(m["rle"], row["height"], row["width"], float(m["score"]))
                                     for m in row["masks"]]
            for row in table.to_pylist()}


def _table_candidates(uri: str) -> dict[str, list[Candidate]]:
    from unsamv2.data.shards import read_mask_table

    table = read_mask_table(uri, columns=["image_uri", "status", "height", "width", "masks"])
    out: dict[str, list[Candidate]] = {}
    for row in table.to_pylist():
        if row["status"] == "ok":
            out[row["image_uri"]] = [Candidate(m["rle"], row["height"], row["width"], float(m["score"]))
                                     for m in row["masks"]]
    return out


def load_candidates(uri: str, min_score: float = DEFAULT_MIN_SCORE) -> CandidateIndex:
    """The candidates in the COCO ``.json`` file or mask table at ``uri`` (local or s3://)."""
    from unsamv2.data import storage

    if not 0.0 <= min_score < 1.0:
        raise InputError(f"the candidate score threshold must lie in [0, 1), got {min_score}.")
    if uri.endswith(".json"):
        try:
            coco = json.loads(storage.read_bytes(uri))
        except json.JSONDecodeError as exc:
            raise InputError(f"{uri} is not valid JSON ({exc.msg}); give a COCO file of candidates.") from exc
        if not isinstance(coco, dict) or "images" not in coco or "annotations" not in coco:
            raise InputError(f"{uri} is not a COCO file (it needs 'images' and 'annotations'); COCO results "
                             "lists need their images: give the instances file with scores.")
        by_key = _coco_candidates(coco, uri)
    else:
        by_key = _table_candidates(uri)
    return CandidateIndex(by_key, uri, min_score)
