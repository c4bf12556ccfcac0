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

A local instance started by :func:`init_ray` listens on 127.0.0.1 only (metrics export port
included) and keeps its session files in a private per-user folder (see :func:`init_ray`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from unsamv2.backends.crashes import CRASH_LIMIT, start_registry
from unsamv2.pipeline.assemble import ShardAssembler
from unsamv2.pipeline.manifest import read_shard_entries
from unsamv2.pipeline.stage import MinerStage

log = logging.getLogger(__name__)

FORWARDED_ENV_PREFIXES = ("UNSAMV2_",)
FORWARDED_ENV = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's loopback-only, single-node mode
NEVER_FORWARDED_PREFIXES = ("UNSAMV2_FAULT_",)  # test switches of old; nothing reads them, none reach workers
ENTRY_READERS = 2  # concurrent tasks reading manifest entries (tiny row groups; keeps the actors fed)


@dataclass(frozen=True)
class RayMiningOptions:
    """How to run the stage on Ray. ``address=None`` starts (or reuses) a local Ray instance."""

    address: str | None = None
    actors: int = 1
    batch_size: int = 4
    max_restarts: int = 4
    include_dashboard: bool = True


def _forwarded_env() -> dict[str, str]:
    """Non-secret settings the workers need (``UNSAMV2_*`` switches, S3 endpoint); never credentials,
    never ``UNSAMV2_FAULT_*``.

    Inside a Ray Job's driver, keys the job's own runtime env already sets are left out: the job's
    values reach the workers anyway, and Ray refuses a ``ray.init`` that sets the same key again.
    """
    taken = _job_env_keys()
    return {k: v for k, v in os.environ.items()
            if (k.startswith(FORWARDED_ENV_PREFIXES) or k in FORWARDED_ENV)
            and not k.startswith(NEVER_FORWARDED_PREFIXES) and k not in taken}


def _job_env_keys() -> set[str]:
    """Environment variable keys set by the runtime env of the Ray Job this process is the
    driver of (Ray passes the job config in ``RAY_JOB_CONFIG_JSON_ENV_VAR``); empty otherwise."""
    import json

    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not raw:
        return set()
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return set()
    return set((runtime_env.get("env_vars") or {}).keys())


def init_ray(address: str | None = None, *, include_dashboard: bool = True, num_cpus: int | None = None) -> str | None:
    """Connect to the Ray cluster at ``address`` (or ``$RAY_ADDRESS``) or start a local one; returns
    the dashboard URL.

    Reuses an already initialised Ray. A local instance is a single-machine node on 127.0.0.1: its
    dashboard, metrics export port and other listeners bind to loopback only, and its session
    files live in a private per-user folder (``$TMPDIR``/``/tmp`` + ``unsamv2-<uid>/ray``, mode
    0700, checked before reuse; ``RAY_TMPDIR`` set: Ray's own choice), not in ``/tmp/ray``, which
    every user shares.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address.startswith("ray://"):
        from unsamv2.errors import InputError

        raise InputError(
            f"Ray Client addresses ({address}) do not work with Ray Data in Ray 2.60; run the flow on a "
            "node of the cluster with address 'auto' (or head-ip:6379), or submit it as a Ray Job."
        )
    runtime_env = {"env_vars": _forwarded_env()}
    if address:
        ctx = ray.init(address=address, runtime_env=runtime_env, ignore_reinit_error=True)
    else:
        ctx = _start_local_ray(runtime_env, include_dashboard=include_dashboard, num_cpus=num_cpus)
    url = ctx.address_info.get("webui_url") if include_dashboard else None
    return f"http://{url}" if url and "://" not in url else (url or None)


def _start_local_ray(runtime_env: dict[str, Any], *, include_dashboard: bool, num_cpus: int | None) -> Any:
    """``ray.init`` of a new local instance on loopback with private session files (see init_ray)."""
    import ray

    kwargs: dict[str, Any] = {"num_cpus": num_cpus, "include_dashboard": include_dashboard,
                              "dashboard_host": "127.0.0.1", "runtime_env": runtime_env, "ignore_reinit_error": True}
    if ray.is_initialized():
        return ray.init(**kwargs)
    if "RAY_TMPDIR" not in os.environ:
        from unsamv2.backends.private_dirs import private_runtime_dir

        kwargs["_temp_dir"] = str(private_runtime_dir() / "ray")
    with _single_machine_node():
        ctx = ray.init(**kwargs)
    node_ip = ctx.address_info.get("node_ip_address")
    if node_ip != "127.0.0.1":
        log.warning("the local Ray node has address %s, not 127.0.0.1: its metrics port may listen on all "
                    "interfaces (this Ray version ignored its single-machine setting)", node_ip)
    return ctx


@contextlib.contextmanager
def _single_machine_node() -> Iterator[None]:
    """Ray's single-machine mode while a local node starts: the node takes 127.0.0.1 as its address,
    so Ray binds its metrics export port and agents to loopback instead of all interfaces.

    This is what ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` selects (the default on macOS and Windows).
    The processes Ray starts now (GCS, raylet, dashboard and its agents, hence every worker and job
    driver) inherit the variable; this process read it at import, so its parsed value is set too.
    Both are restored afterwards: a later connection to a remote cluster is unaffected.
    """
    try:
        from ray._private import ray_constants
    except ImportError:
        ray_constants = None
    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):  # another Ray: start as is; init_ray warns
        yield
        return
    saved, saved_env = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(SINGLE_MACHINE_ENV)
    ray_constants.ENABLE_RAY_CLUSTER, os.environ[SINGLE_MACHINE_ENV] = False, "0"
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = saved_env


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
    ds = ray.data.from_items([{"shard": s} for s in pending], override_num_blocks=min(len(pending), 200))
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
