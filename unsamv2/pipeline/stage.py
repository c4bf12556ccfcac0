"""``MinerStage``: the mining step as a plain class that does not know where it runs.

``setup()`` builds the miner once (models, backbone weights), ``process_batch()`` turns a batch of
manifest entries into mask-table rows (reading and decoding each image inside the call, one image
at a time, so a batch of decoded images is never held), ``teardown()`` frees the miner. The local
backend and the Ray Data backend both run it unchanged; resources are declared as data.

Every input row yields exactly one output row: ``ok`` with masks, or ``error`` with a reason, also
when the miner itself raises on an image (reason ``failed``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from unsamv2.data.images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
    DEFAULT_RETRY,
    RetryPolicy,
    load_image,
)
from unsamv2.data.schema import MASK_TABLE_SCHEMA, image_row
from unsamv2.errors import RejectedImage

# Columns the stage adds to mask-table rows so the writer can place them; dropped before writing.
PLACEMENT_FIELDS = [pa.field("shard", pa.int32()), pa.field("position", pa.int32()),
                    pa.field("mine_seconds", pa.float32())]
STAGE_OUTPUT_SCHEMA = pa.schema(list(MASK_TABLE_SCHEMA) + PLACEMENT_FIELDS, metadata=MASK_TABLE_SCHEMA.metadata)


class ImageMiner(Protocol):
    """What the stage needs from a miner: RGB (H, W, 3) uint8 in (with the image's URI, for miners
    that look up per-image inputs), mask-table mask records out. Raising
    :class:`unsamv2.errors.RejectedImage` makes an error row with its reason."""

    def mine_records(self, image: np.ndarray, image_uri: str) -> list[dict[str, Any]]: ...

    def config_hash(self) -> str: ...


@dataclass(frozen=True)
class Resources:
    """Per-worker needs of a stage; fractional GPUs are allowed (several actors share a GPU)."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus <= 0 or self.gpus < 0:
            from unsamv2.errors import InputError

            raise InputError(f"resources need cpus > 0 and gpus >= 0, got cpus={self.cpus}, gpus={self.gpus}.")


class MinerStage:
    """Mine a batch of manifest entries into mask-table rows.

    Args:
        miner_factory: builds the miner in ``setup()`` (called once per worker); must be picklable
            (a module-level function or a ``functools.partial`` of one).
        resources: what one worker running this stage needs.
        max_pixels / min_side: decoding guards, see :mod:`unsamv2.data.images`.
        retry: how transient read failures are retried; if they persist the row's error is
            ``unavailable`` and the assembler leaves its shard incomplete.
    """

    name = "MinerStage"

    def __init__(self, miner_factory: Callable[[], ImageMiner], *, resources: Resources = Resources(),
                 max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE,
                 retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.miner_factory = miner_factory
        self.retry = retry
        self.resources = resources
        self.max_pixels = max_pixels
        self.min_side = min_side
        self._miner: ImageMiner | None = None

    def setup(self) -> None:
        """Build the miner (load models once)."""
        if self._miner is None:
            self._miner = self.miner_factory()

    def teardown(self) -> None:
        """Release the miner."""
        self._miner = None

    def process_one(self, image_id: int, image_uri: str) -> dict[str, Any]:
        """One mask-table row (plus ``mine_seconds``) for one image; never raises on bad input."""
        miner = self._require_miner()
        start = time.perf_counter()
        config_hash = miner.config_hash()
        loaded = load_image(image_uri, max_pixels=self.max_pixels, min_side=self.min_side, retry=self.retry)
        base = functools.partial(image_row, image_id=image_id, image_uri=image_uri,
                                 producer_config_hash=config_hash, content_hash=loaded.content_hash)
        if not loaded.ok:
            row = base(error=loaded.error, error_message=loaded.message)
        else:
            image = loaded.rgb
            h, w = image.shape[:2]
            try:
                row = base(height=h, width=w, masks=miner.mine_records(image, image_uri))
            except RejectedImage as exc:
                row = base(height=h, width=w, error=exc.reason, error_message=str(exc))
            except Exception as exc:  # noqa: BLE001 - one bad image must not stop the run
                row = base(height=h, width=w, error="failed",
                           error_message=f"mining raised {type(exc).__name__}: {exc}")
        row["mine_seconds"] = time.perf_counter() - start
        return row

    def process_batch(self, batch: Mapping[str, Sequence[Any]] | pa.Table,
                      on_image: Callable[[dict[str, Any]], None] | None = None,
                      before_image: Callable[[int, int, str], str | None] | None = None) -> pa.Table:
        """Rows for a batch with columns ``shard``, ``position``, ``image_id``, ``image_uri``.

        Returns a table with the mask-table columns plus ``shard``, ``position``, ``mine_seconds``.
        ``on_image(row)`` is called after each image (backends hook metrics and fault injection
        here); ``before_image(shard, position, image_uri)`` before each one: a message it returns
        is recorded as an ``error`` row ``crashed`` instead of mining the image (a backend's
        answer to an image that killed its worker before).
        """
        cols = batch.to_pydict() if isinstance(batch, pa.Table) else {k: list(v) for k, v in batch.items()}
        rows = []
        for shard, position, image_id, uri in zip(cols["shard"], cols["position"], cols["image_id"],
                                                  cols["image_uri"], strict=True):
            crashed = before_image(int(shard), int(position), str(uri)) if before_image is not None else None
            row = self.process_one(int(image_id), str(uri)) if crashed is None else self._crashed_row(
                int(image_id), str(uri), crashed)
            row.update(shard=int(shard), position=int(position))
            rows.append(row)
            if on_image is not None:
                on_image(row)
        return pa.Table.from_pylist(rows, schema=STAGE_OUTPUT_SCHEMA)

    def _require_miner(self) -> ImageMiner:
        if self._miner is None:
            raise RuntimeError("MinerStage.setup() must run before process_batch()")
        return self._miner

    def _crashed_row(self, image_id: int, image_uri: str, message: str) -> dict[str, Any]:
        row = image_row(image_id=image_id, image_uri=image_uri, producer_config_hash=self._require_miner().config_hash(),
                        error="crashed", error_message=message)
        row["mine_seconds"] = 0.0
        return row


class NoOpMiner:
    """A miner that finds nothing: measures the engine's own overhead (read, decode, write)."""

    def mine_records(self, image: np.ndarray, image_uri: str) -> list[dict[str, Any]]:
        return []

    def config_hash(self) -> str:
        return "noop"


def noop_miner() -> NoOpMiner:
    """Factory for :class:`NoOpMiner` (picklable)."""
    return NoOpMiner()
