"""Batches for the recipe: the train split of the mined table, optionally mixed with human
masks (UnSAMv2+), cut into per-worker batches, one batch prefetched in a background thread.

All workers walk the same record sequence; a step takes ``world * batch_size`` records and
worker ``rank`` loads records ``rank * batch_size ... (rank + 1) * batch_size - 1``. Human
records replace mined ones at a fixed rate (record n is human when ``floor((n + 1) f)`` exceeds
``floor(n f)``), so the mix is exact and deterministic. :class:`LoaderPosition` (both streams'
positions and the record count) is what a checkpoint stores.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from unsamv2.data import storage
from unsamv2.errors import InputError
from unsamv2.train.config import TrainConfig
from unsamv2.train.data import (
    Batch,
    MaskTableStream,
    StreamPosition,
    TableRecord,
    collate,
    load_sample,
)


@dataclass(frozen=True)
class LoaderPosition:
    """Positions of the mined and human streams and the number of records consumed."""

    mined: StreamPosition = StreamPosition()
    human: StreamPosition = StreamPosition()
    records: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"mined": self.mined.to_dict(), "human": self.human.to_dict(), "records": self.records}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoaderPosition:
        return cls(StreamPosition.from_dict(data["mined"]), StreamPosition.from_dict(data["human"]),
                   int(data["records"]))


def read_train_ids(config: TrainConfig) -> tuple[set[int] | None, set[int]]:
    """(train ids or None for "every ok image", val ids) from the stats step's split."""
    split_uri = config.resolved_split_uri
    if split_uri is None:
        return None, set()
    from unsamv2.data.stats import read_split

    if not storage.exists(storage.join(split_uri, "split.parquet")):
        raise InputError(f"no split.parquet under {split_uri}; run 'unsamv2 stats {config.table_uri}' first, "
                         "give --split, or train on every image with --no-split.")
    split = read_split(split_uri)
    if not split["train"]:
        raise InputError(f"the split under {split_uri} has no training image; lower the val fraction.")
    return split["train"], split["val"]


def is_human_slot(index: int, fraction: float) -> bool:
    """Whether record ``index`` of the mixed sequence comes from the human-labelled stream."""
    return fraction > 0 and math.floor((index + 1) * fraction) > math.floor(index * fraction)


class TrainLoader:
    """Per-worker batches from position to position (see the module docstring)."""

    def __init__(self, config: TrainConfig, image_size: int, rank: int = 0, world: int = 1,
                 human_table_uri: str | None = None) -> None:
        self.config, self.image_size, self.rank, self.world = config, int(image_size), rank, world
        train_ids, self.val_ids = read_train_ids(config)
        self.mined = MaskTableStream(config.table_uri, image_ids=train_ids, seed=config.seed,
                                     min_area=config.min_mask_area)
        self.human = None
        if config.human_fraction > 0:
            if human_table_uri is None:
                raise InputError("human_fraction > 0 needs the human-mask table; build it with "
                                 "unsamv2.train.supervision.human_mask_table().")
            self.human = MaskTableStream(human_table_uri, image_ids=None, seed=config.seed, source="human",
                                         source_id=1, min_area=config.min_mask_area)

    def _records(self, position: LoaderPosition) -> Iterator[tuple[TableRecord, int, LoaderPosition]]:
        """(record, its epoch, position after it)."""
        mined = self.mined.iter_from(position.mined)
        human = self.human.iter_from(position.human) if self.human is not None else None
        current, index = position, position.records
        while True:
            if human is not None and is_human_slot(index, self.config.human_fraction):
                record, after = next(human)
                current = replace(current, human=after, records=index + 1)
            else:
                record, after = next(mined)
                current = replace(current, mined=after, records=index + 1)
            yield record, after.epoch, current
            index += 1

    def batches(self, position: LoaderPosition) -> Iterator[tuple[Batch, LoaderPosition]]:
        """This worker's batches from ``position`` on, each with the position after its step."""
        records = self._records(position)
        per_step = self.world * self.config.batch_size
        while True:
            step = [next(records) for _ in range(per_step)]
            mine = step[self.rank * self.config.batch_size:(self.rank + 1) * self.config.batch_size]
            samples = [load_sample(record, size=self.image_size, max_masks=self.config.max_masks_per_image,
                                   augment=self.config.augment, seed=self.config.seed, epoch=epoch)
                       for record, epoch, _ in mine]
            yield collate(samples), step[-1][2]

    def val_batches(self, limit: int) -> list[Batch]:
        """Up to ``limit`` validation images (the split's val ids, no augmentation), one per batch."""
        if limit <= 0 or not self.val_ids:
            return []
        stream = MaskTableStream(self.config.table_uri, image_ids=self.val_ids, seed=self.config.seed)
        plain = replace(self.config.augment, enabled=False)
        out: list[Batch] = []
        for shard in stream.shards:
            for record in sorted(stream.shard_records(shard, 0), key=lambda r: r.image_id):
                out.append(collate([load_sample(record, size=self.image_size,
                                                max_masks=self.config.max_masks_per_image, augment=plain,
                                                seed=self.config.seed, epoch=0)]))
                if len(out) >= limit:
                    return out
        return out


class Prefetcher:
    """Runs an iterator one item ahead in a daemon thread; exceptions re-raise in the consumer."""

    _DONE = object()

    def __init__(self, iterator: Iterator[Any], depth: int = 1) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterator,), daemon=True, name="unsamv2-loader")
        self._thread.start()

    def _run(self, iterator: Iterator[Any]) -> None:
        try:
            for item in iterator:
                while not self._stop.is_set():
                    try:
                        self._queue.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._queue.put(("error", exc))
            return
        self._queue.put(("done", self._DONE))

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self) -> Any:
        kind, value = self._queue.get()
        if kind == "error":
            raise value
        if kind == "done":
            raise StopIteration
        return value

    def close(self) -> None:
        """Stop the thread (it finishes the item it is loading) and drop what it prefetched."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=30)
