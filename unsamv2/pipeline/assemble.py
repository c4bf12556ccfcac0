"""Collect stage output rows per shard and write each shard once it is complete.

Rows arrive in any order and in batches from any worker. A shard is written (temp then rename,
marker last) as soon as all of its manifest entries have a row; duplicates (a retried batch whose
first attempt also delivered) are dropped by (shard, position), so the table is duplicate-free by
construction. Only rows of unfinished shards are held in memory.

A shard with any ``unavailable`` row (storage failed transiently after retries) is not written:
it stays without a marker, is counted in :attr:`RunCounters.incomplete_shards`, and a rerun mines it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from unsamv2.data.schema import MASK_TABLE_SCHEMA
from unsamv2.data.shards import write_shard
from unsamv2.pipeline.manifest import ManifestInfo


@dataclass
class RunCounters:
    """What one run produced (shards written by this run only)."""

    images: int = 0
    ok_images: int = 0
    masks: int = 0
    errors: Counter = field(default_factory=Counter)
    mine_seconds: float = 0.0
    shards_written: int = 0
    duplicates_dropped: int = 0
    unavailable_images: int = 0
    incomplete_shards: list[int] = field(default_factory=list)
    unavailable_example: str | None = None


class ShardAssembler:
    """Group stage rows by shard and write complete shards under ``output_uri``."""

    def __init__(self, output_uri: str, info: ManifestInfo, pending: list[int],
                 on_shard_written: Callable[[int, RunCounters], None] | None = None) -> None:
        self.output_uri = output_uri
        self.info = info
        self.expected = {s: info.shard_rows(s) for s in pending}
        self.parts: dict[int, dict[int, pa.Table]] = defaultdict(dict)
        self.counters = RunCounters()
        self.on_shard_written = on_shard_written

    @property
    def remaining(self) -> list[int]:
        """Pending shards not written yet."""
        return sorted(self.expected)

    def add(self, batch: pa.Table) -> None:
        """Take a batch of stage output rows (mask-table columns + shard, position, mine_seconds)."""
        shards = batch.column("shard").to_pylist()
        positions = batch.column("position").to_pylist()
        for i, (shard, pos) in enumerate(zip(shards, positions, strict=True)):
            if shard not in self.expected or pos in self.parts[shard]:
                self.counters.duplicates_dropped += 1
                continue
            self.parts[shard][pos] = batch.slice(i, 1)
        for shard in {s for s in shards if s in self.expected}:
            if len(self.parts[shard]) == self.expected[shard]:
                self._write(shard)

    def _write(self, shard: int) -> None:
        rows = self.parts.pop(shard)
        table = pa.concat_tables([rows[p] for p in sorted(rows)])
        unavailable = pc.equal(table.column("error"), "unavailable")
        n_unavailable = pc.sum(unavailable).as_py() or 0
        if n_unavailable:  # storage failed transiently: leave the shard without a marker for a rerun
            c = self.counters
            c.unavailable_images += n_unavailable
            c.incomplete_shards.append(shard)
            if c.unavailable_example is None:
                c.unavailable_example = table.filter(unavailable).column("error_message")[0].as_py()
            del self.expected[shard]
            return
        self._count(table)
        write_shard(self.output_uri, shard, table.select(MASK_TABLE_SCHEMA.names))
        del self.expected[shard]
        self.counters.shards_written += 1
        if self.on_shard_written is not None:
            self.on_shard_written(shard, self.counters)

    def _count(self, table: pa.Table) -> None:
        c = self.counters
        c.images += table.num_rows
        ok = pc.equal(table.column("status"), "ok")
        c.ok_images += pc.sum(ok).as_py() or 0
        c.masks += pc.sum(pc.list_value_length(table.column("masks"))).as_py() or 0
        c.errors.update(e for e in table.column("error").to_pylist() if e is not None)
        c.mine_seconds += pc.sum(table.column("mine_seconds")).as_py() or 0.0
