"""The local backend: run a stage in this process, shard by shard (embedded default, debugging)."""

from __future__ import annotations

from unsamv2.pipeline.assemble import ShardAssembler
from unsamv2.pipeline.manifest import read_shard_entries
from unsamv2.pipeline.stage import MinerStage


def run_stage_local(stage: MinerStage, output_uri: str, pending: list[int], assembler: ShardAssembler,
                    *, batch_size: int = 4) -> None:
    """Process every pending shard's manifest entries with ``stage`` and feed the assembler."""
    stage.setup()
    try:
        for shard in pending:
            entries = read_shard_entries(output_uri, shard)
            for start in range(0, entries.num_rows, batch_size):
                assembler.add(stage.process_batch(entries.slice(start, batch_size)))
    finally:
        stage.teardown()
