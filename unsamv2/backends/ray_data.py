"""The Ray Data backend: the ``MinerStage`` as a pool of Ray actors that load the miner once.

The manifest rows of the pending shards stream through ``map_batches`` with a callable class
(:class:`MinerActor`) and ``compute=ActorPoolStrategy(size=actors)``; each actor declares the
stage's CPUs and (fractional) GPUs, reads and decodes its images itself, and emits mask-table rows,
which the driver assembles into shards. Actors restart and their tasks retry on failure
(``max_restarts`` / ``max_task_retries``); the assembler drops duplicates, so a killed actor costs
time, never rows.

Metrics (Prometheus, shown in the Ray dashboard's Metrics view when Prometheus/Grafana are set up;
Ray prefixes them with ``ray_``): ``unsamv2_miner_images`` (tag ``status``),
``unsamv2_miner_masks``, ``unsamv2_miner_errors`` (tag ``reason``),
``unsamv2_miner_seconds_per_image`` (histogram).

An image that kills its actor on every attempt (a decoder segfault, memory exhaustion) would
otherwise use up the restarts and fail the run: a :class:`~unsamv2.backends.crashes.CrashRegistry`
actor learns from every restarted actor which image it is on, and an image that kills a restarted
actor is recorded as an ``error`` row ``crashed`` instead of being mined again.

Nothing here injects faults: tests wrap the stage (``tests/support/faults.py`` overrides
``MinerStage.process_batch`` around its ``on_image`` / ``before_image`` hooks), so no fault switch
exists in production code or reaches a worker (``UNSAMV2_FAULT_*`` variables are never forwarded).

Connecting to Ray (or starting a private local instance) is :mod:`unsamv2.backends.ray_runtime`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from unsamv2.backends.crashes import CRASH_LIMIT, start_registry
from unsamv2.backends.ray_runtime import _forwarded_env, init_ray
from unsamv2.pipeline.assemble import ShardAssembler
from unsamv2.pipeline.manifest import read_shard_entries
from unsamv2.pipeline.stage import MinerStage

log = logging.getLogger(__name__)

ENTRY_READERS = 2  # concurrent tasks reading manifest entries (tiny row groups; keeps the actors fed)


@dataclass(frozen=True)
class RayMiningOptions:
    """How to run the stage on Ray. ``address=None`` starts (or reuses) a local Ray instance."""

    address: str | None = None
    actors: int = 1
    batch_size: int = 4
    max_restarts: int = 4
    include_dashboard: bool = True


class _Metrics:
    def __init__(self) -> None:
        from ray.util.metrics import Counter, Histogram

        self.images = Counter("unsamv2_miner_images", description="Images mined, by status.", tag_keys=("status",))
        self.masks = Counter("unsamv2_miner_masks", description="Masks mined.")
        self.errors = Counter("unsamv2_miner_errors", description="Images that failed, by reason.", tag_keys=("reason",))
        self.seconds = Histogram("unsamv2_miner_seconds_per_image", description="Seconds to read, decode and mine one image.",
                                 boundaries=[0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60])

    def record(self, row: dict[str, Any]) -> None:
        self.images.inc(1, tags={"status": row["status"]})
        if row["masks"]:
            self.masks.inc(len(row["masks"]))
        if row["error"]:
            self.errors.inc(1, tags={"reason": row["error"]})
        self.seconds.observe(row["mine_seconds"])


class MinerActor:
    """Ray Data callable class: one per actor; builds the miner once, mines batches of entries.

    ``registry``: the run's :class:`~unsamv2.backends.crashes.CrashRegistry` handle. A restarted
    actor reports each image to it before mining, so an image that kills it again is recorded as
    ``crashed`` instead of failing the run (None: no such bookkeeping).
    """

    def __init__(self, stage: MinerStage, registry: Any = None) -> None:
        import ray

        self.stage = stage
        self.stage.setup()
        self.metrics = _Metrics()
        self.registry = registry
        self.actor_id = ray.get_runtime_context().get_actor_id()
        self.careful = registry is not None and ray.get(registry.started.remote(self.actor_id))

    def _before_image(self, shard: int, position: int, image_uri: str) -> str | None:
        if self.careful:
            import ray

            if ray.get(self.registry.begin.remote(self.actor_id, f"{shard}:{position}")) >= CRASH_LIMIT:
                return "the worker process died while mining this image, also after a restart (segfault or out of memory)"
        return None

    def _on_image(self, row: dict[str, Any]) -> None:
        self.metrics.record(row)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = self.stage.process_batch(batch, on_image=self._on_image, before_image=self._before_image)
        if self.careful:
            import ray

            ray.get(self.registry.idle.remote(self.actor_id))
        return rows


def run_stage_ray(stage: MinerStage, output_uri: str, pending: list[int], assembler: ShardAssembler,
                  options: RayMiningOptions) -> str | None:
    """Mine the pending shards with a Ray actor pool; returns the Ray dashboard URL."""
    import ray
    import ray.data

    dashboard = init_ray(options.address, include_dashboard=options.include_dashboard)
    ray.data.DataContext.get_current().enable_progress_bars = False
    # Shard ids in, manifest entries out: a light task that reserves no CPU (so it never waits behind
    # actors that hold every CPU) reads each pending shard's row group of the manifest. A 0-CPU task
    # has no resource bound, so the pool size caps it: without a cap Ray starts a worker process per
    # shard at once (measured: dozens of processes, GBs of memory, 10x slower on 2 cores).
    ds: ray.data.Dataset = ray.data.from_items([{"shard": s} for s in pending],
                                               override_num_blocks=min(len(pending), 200))
    ds = ds.map_batches(functools.partial(_shard_entries, output_uri), batch_size=1, batch_format="pyarrow",
                        num_cpus=0, compute=ray.data.TaskPoolStrategy(size=min(ENTRY_READERS, len(pending))))
    registry = start_registry()
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameters for actor restarts/retries yet; the defaults are unbounded,
        # which would retry a poison image forever, so bound them through the remote args.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = _map_miner(ds, stage, registry, options, min(options.actors, len(pending)))
    try:
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            assembler.add(batch)
        crashed = ray.get(registry.crashes.remote())
        if crashed:
            log.warning("actor deaths while mining (shard:position -> deaths): %s", crashed)
    finally:
        with contextlib.suppress(Exception):  # never hide the run's own error
            ray.kill(registry)
    return dashboard


def _shard_entries(output_uri: str, batch: pa.Table) -> pa.Table:
    """Manifest entries of the shards in ``batch`` (a table with a ``shard`` column)."""
    return pa.concat_tables([read_shard_entries(output_uri, int(s)) for s in batch.column("shard").to_pylist()])


def _map_miner(ds: Any, stage: MinerStage, registry: Any, options: RayMiningOptions, actors: int) -> Any:
    """The actor-pool step (``actors``: at most one per pending shard, a shard being one block)."""
    import ray.data

    return ds.map_batches(
        MinerActor,
        fn_constructor_kwargs={"stage": stage, "registry": registry},
        batch_size=options.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=stage.resources.cpus,
        num_gpus=stage.resources.gpus,
        max_restarts=options.max_restarts,
        max_task_retries=options.max_restarts,
        runtime_env={"env_vars": _forwarded_env()},  # this run's settings, also on a long-lived cluster
    )
