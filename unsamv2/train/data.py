"""Training data streamed from a mask table, shard by shard (local or s3://).

Order: each epoch visits the table's complete shards in a seeded random order and, inside a
shard, its usable rows (status ``ok``, in the train split, at least one mask with a g) in a seeded
random order; only one shard is in memory at a time. The stream position is
``(epoch, shard, row)``: resuming skips the shards before ``shard`` without reading them.

A row becomes a :class:`TrainSample` on demand: up to ``max_masks`` of its masks drawn at random
(the reference samples 30 objects per image), the image read with
:func:`unsamv2.data.images.load_image`, the chosen masks decoded from RLE, augmented jointly
and squashed to the model's square input (:mod:`unsamv2.train.augment`), the image normalised
with SAM-2's ImageNet mean / std. Every random choice of a sample comes from a generator seeded
by ``(seed, epoch, image_id)``, so a sample does not depend on which worker loads it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from unsamv2.data.rle import decode_rles
from unsamv2.data.shards import ShardInfo, list_complete_shards, read_shard
from unsamv2.errors import InputError, StorageError
from unsamv2.train.augment import augment_and_resize, draw_params
from unsamv2.train.config import AugmentConfig

log = logging.getLogger(__name__)

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
_COLUMNS = ["image_id", "image_uri", "height", "width", "status", "masks"]


@dataclass(frozen=True)
class StreamPosition:
    """Where a stream continues: ``epoch``, index in the epoch's ``shard`` order, next ``row``
    in that shard's row order."""

    epoch: int = 0
    shard: int = 0
    row: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "shard": self.shard, "row": self.row}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamPosition:
        return cls(int(data["epoch"]), int(data["shard"]), int(data["row"]))


@dataclass(frozen=True)
class TableRecord:
    """One usable mask-table row: the image and its masks with g (RLE, not decoded)."""

    image_id: int
    image_uri: str
    height: int
    width: int
    rles: tuple[bytes, ...]
    granularity: tuple[float, ...]
    source: str = "mined"


@dataclass(frozen=True)
class TrainSample:
    """A prepared image: ``image`` (3, S, S) float32 normalised; ``masks`` (K, S, S) bool;
    ``granularity`` (K,) float32."""

    image_id: int
    image: torch.Tensor
    masks: torch.Tensor
    granularity: torch.Tensor


def _seed_rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) & 0xFFFFFFFF for p in parts])


class MaskTableStream:
    """An endless, seeded, resumable stream of :class:`TableRecord` from one mask table.

    ``image_ids``: keep only these images (the train split), or None for every ok image;
    ``min_area``: masks smaller than this fraction of their image are not training targets.
    """

    def __init__(self, table_uri: str, *, image_ids: set[int] | None, seed: int, source: str = "mined",
                 source_id: int = 0, min_area: float = 0.0) -> None:
        self.table_uri, self.image_ids, self.seed = table_uri, image_ids, int(seed)
        self.min_area = float(min_area)
        self.source, self.source_id = source, int(source_id)
        self.shards: list[ShardInfo] = list_complete_shards(table_uri)
        if not self.shards:
            raise InputError(f"{table_uri} has no complete mask-table shards; mine it first "
                             "('unsamv2 mine') or check the path.")

    def shard_order(self, epoch: int) -> list[ShardInfo]:
        """The shards in the order epoch ``epoch`` visits them."""
        order = _seed_rng(self.seed, self.source_id, epoch).permutation(len(self.shards))
        return [self.shards[i] for i in order]

    def shard_records(self, shard: ShardInfo, epoch: int) -> list[TableRecord]:
        """The usable rows of one shard, in this epoch's order."""
        table = read_shard(shard, columns=_COLUMNS)
        keep = pc.equal(table["status"], "ok")
        if self.image_ids is not None:
            ids = pa.array(sorted(self.image_ids), type=pa.int64())
            keep = pc.and_(keep, pc.is_in(table["image_id"], value_set=ids))
        records = [r for r in map(self._record, table.filter(keep).to_pylist()) if r is not None]
        order = _seed_rng(self.seed, self.source_id, epoch, shard.index).permutation(len(records))
        return [records[i] for i in order]

    def _record(self, row: dict[str, Any]) -> TableRecord | None:
        smallest = self.min_area * int(row["height"]) * int(row["width"])
        masks = [m for m in row["masks"] if m["granularity"] is not None and m["area"] >= smallest]
        if not masks:
            return None
        return TableRecord(int(row["image_id"]), row["image_uri"], int(row["height"]), int(row["width"]),
                           tuple(m["rle"] for m in masks), tuple(float(m["granularity"]) for m in masks),
                           self.source)

    def iter_from(self, position: StreamPosition) -> Iterator[tuple[TableRecord, StreamPosition]]:
        """Records from ``position`` on, each with the position just after it. Endless."""
        epoch, start_shard, start_row = position.epoch, position.shard, position.row
        while True:
            seen = 0
            for s, shard in enumerate(self.shard_order(epoch)):
                if s < start_shard:
                    seen += 1  # skipped, not read: it had rows when the position was written
                    continue
                records = self.shard_records(shard, epoch)
                seen += len(records)
                for r in range(start_row, len(records)):
                    yield records[r], StreamPosition(epoch, s, r + 1)
                start_row = 0
            if seen == 0:
                raise InputError(f"{self.table_uri} has no usable training image (status ok, in the train "
                                 "split, with masks that have a granularity); check the table and the split.")
            epoch, start_shard = epoch + 1, 0


def choose_masks(n: int, max_masks: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to ``max_masks`` of ``n`` masks, drawn without replacement, sorted."""
    if n <= max_masks:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_masks, replace=False))


def load_sample(record: TableRecord, *, size: int, max_masks: int, augment: AugmentConfig,
                seed: int, epoch: int) -> TrainSample:
    """Read, decode, augment and resize one record (see the module docstring).

    Raises StorageError when the image cannot be read or no longer matches the table's size.
    """
    from unsamv2.data.images import load_image

    rng = _seed_rng(seed, epoch, record.image_id, 0 if record.source == "mined" else 1)
    chosen = choose_masks(len(record.rles), max_masks, rng)
    params = draw_params(augment, rng)
    loaded = load_image(record.image_uri)
    if not loaded.ok:
        raise StorageError(f"training image {record.image_uri} cannot be read ({loaded.error}: {loaded.message}); "
                           "restore it or re-mine the table.")
    rgb = loaded.rgb
    if rgb.shape[:2] != (record.height, record.width):
        raise StorageError(f"training image {record.image_uri} is {rgb.shape[1]}x{rgb.shape[0]} "
                           f"but the mask table says {record.width}x{record.height}; re-mine the table.")
    masks = decode_rles([record.rles[i] for i in chosen], record.height, record.width)
    image, masks_t = augment_and_resize(rgb, masks, size, params)
    mean = torch.tensor(IMAGE_MEAN)[:, None, None]
    std = torch.tensor(IMAGE_STD)[:, None, None]
    g = torch.tensor([record.granularity[i] for i in chosen], dtype=torch.float32)
    return TrainSample(record.image_id, (image - mean) / std, masks_t, g)


@dataclass(frozen=True)
class Batch:
    """Images and their objects, the objects of image i contiguous.

    images (B, 3, S, S) float32; masks (N, S, S) bool; granularity (N,) float32; counts (B,)
    int64 objects per image (sum N); image_ids: the B ids.
    """

    images: torch.Tensor
    masks: torch.Tensor
    granularity: torch.Tensor
    counts: torch.Tensor
    image_ids: tuple[int, ...]

    @property
    def num_objects(self) -> int:
        return int(self.masks.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.images.to(device), self.masks.to(device), self.granularity.to(device),
                     self.counts.to(device), self.image_ids)


def collate(samples: list[TrainSample]) -> Batch:
    """Stack samples into a :class:`Batch`."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    return Batch(torch.stack([s.image for s in samples]), torch.cat([s.masks for s in samples]),
                 torch.cat([s.granularity for s in samples]),
                 torch.tensor([s.masks.shape[0] for s in samples], dtype=torch.int64),
                 tuple(s.image_id for s in samples))
