"""The ``mine`` job: plan the manifest, run the ``MinerStage`` on a backend, write the mask table.

:func:`run_mine` is what the CLI (``unsamv2 mine``) and the Prefect flow (``mine``) call. Shards
that already have a ``_SUCCESS`` marker are skipped, so a rerun only computes what is missing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from unsamv2.data import storage
from unsamv2.data.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, DEFAULT_RETRY
from unsamv2.data.shards import is_complete
from unsamv2.errors import IncompleteRunError, InputError
from unsamv2.mining.config import MinerConfig
from unsamv2.pipeline.assemble import RunCounters, ShardAssembler
from unsamv2.pipeline.manifest import ManifestInfo, ensure_manifest
from unsamv2.pipeline.stage import ImageMiner, MinerStage, Resources, noop_miner

MineBackend = Literal["local", "ray"]
MinerKind = Literal["unsamv2", "noop"]
SUMMARY_FILE = "summary.json"
SUMMARY_MD = "summary.md"


@dataclass(frozen=True)
class MineJob:
    """Everything a mining run needs, validated once: the mining use case's one typed job.

    ``miner`` holds the miner's settings (a :class:`~unsamv2.mining.config.MinerConfig`, its
    defaults when None). ``miner_kind="noop"`` runs the engine with a miner that finds nothing
    (overhead benchmarks). ``unsamv2 mine`` and the ``mine`` flow build it with
    :meth:`from_values` from flat values (the job's fields and the miner's).
    """

    input_uri: str
    output_uri: str
    shard_size: int = 256
    backend: MineBackend = "local"
    batch_size: int = 4
    actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    ray_address: str | None = None
    max_restarts: int = 4
    read_attempts: int = DEFAULT_RETRY.attempts
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = DEFAULT_MIN_SIDE
    miner_kind: MinerKind = "unsamv2"
    miner: MinerConfig | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.shard_size >= 1, f"shard_size must be at least 1, got {self.shard_size}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.actors >= 1, f"actors must be at least 1, got {self.actors}"),
            (self.backend in get_args(MineBackend), f"backend must be 'local' or 'ray', got {self.backend!r}"),
            (self.miner_kind in get_args(MinerKind), f"miner_kind must be 'unsamv2' or 'noop', got {self.miner_kind!r}"),
            (self.max_restarts >= 0, f"max_restarts must be >= 0, got {self.max_restarts}"),
            (self.read_attempts >= 1, f"read_attempts must be at least 1, got {self.read_attempts}"),
            (self.input_uri.rstrip("/") != self.output_uri.rstrip("/"), "the output must differ from the input"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message + "; fix the mining parameters.")
        Resources(self.cpus_per_actor, self.gpus_per_actor)  # validates
        if self.miner is None and self.miner_kind == "unsamv2":
            object.__setattr__(self, "miner", MinerConfig())

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> MineJob:
        """The job of flat ``values``: this job's fields plus the miner's
        (:class:`~unsamv2.mining.config.MinerConfig` fields, e.g. ``backbone``, ``device``), as
        the CLI flags and the ``mine`` flow's parameters give them; an unknown key is an InputError.
        Miner settings are ignored with ``miner_kind="noop"``."""
        own = {f.name for f in dataclasses.fields(cls)} - {"miner"}
        mining = {f.name for f in dataclasses.fields(MinerConfig)}
        unknown = sorted(set(values) - own - mining)
        if unknown:
            raise InputError(f"unknown mining parameters {unknown}; valid ones are {sorted(own | mining)}.")
        miner = None
        if values.get("miner_kind", "unsamv2") == "unsamv2":
            miner = MinerConfig(**{k: v for k, v in values.items() if k in mining})
        return cls(**{k: v for k, v in values.items() if k in own}, miner=miner)

    def stage(self) -> MinerStage:
        """The stage this job runs (picklable: the miner is built in ``setup()`` on the worker)."""
        factory: Callable[[], ImageMiner] = (
            noop_miner if self.miner_kind == "noop" else functools.partial(method_miner, self.miner)
        )
        return MinerStage(factory, resources=Resources(self.cpus_per_actor, self.gpus_per_actor),
                          max_pixels=self.max_pixels, min_side=self.min_side,
                          retry=dataclasses.replace(DEFAULT_RETRY, attempts=self.read_attempts))


class MethodMiner:
    """Adapts ``unsamv2.mining.Miner`` (the UnSAMv2 divide-and-conquer miner) to the stage."""

    def __init__(self, config: Any) -> None:
        from unsamv2.mining import Miner

        self._config = config
        self._miner = Miner(config)

    def mine_records(self, image: Any, image_uri: str) -> list[dict[str, Any]]:
        from unsamv2.mining import to_mask_records

        return to_mask_records(self._miner.mine(image, image_uri))

    def config_hash(self) -> str:
        return self._config.config_hash()


def method_miner(config: Any) -> MethodMiner:
    """Factory of :class:`MethodMiner` (picklable through ``functools.partial``)."""
    return MethodMiner(config)


@dataclass(frozen=True)
class MineSummary:
    """What a run did. ``shards_skipped`` were complete before it started."""

    output_uri: str
    images_total: int
    shards_total: int
    shards_skipped: int
    shards_written: int
    images: int
    ok_images: int
    masks: int
    errors: dict[str, int]
    seconds: float
    images_per_second: float
    mine_seconds_per_image: float
    duplicates_dropped: int
    skipped_non_images: int
    dashboard_url: str | None = None
    images_unavailable: int = 0
    skipped_paths: dict[str, int] = dataclasses.field(default_factory=dict)
    shards_incomplete: list[int] = dataclasses.field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def rows(self) -> list[dict[str, Any]]:
        """``{"metric", "value"}`` rows: images, masks, throughput, shards, errors by reason."""
        return summary_rows(asdict(self))

    def to_markdown(self, stats: dict[str, Any] | None = None) -> str:
        """The run as Markdown (``summary.md``; the flow's report artifact); ``stats``: the
        table statistics (``unsamv2.data.stats``) when computed."""
        return summary_markdown(asdict(self), stats)


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of a :class:`MineSummary` given as a dict (what tasks pass around)."""
    rows = [
        {"metric": "images (this run)", "value": summary["images"]},
        {"metric": "ok images (this run)", "value": summary["ok_images"]},
        {"metric": "masks (this run)", "value": summary["masks"]},
        {"metric": "masks per ok image", "value": round(summary["masks"] / max(summary["ok_images"], 1), 2)},
        {"metric": "images per second", "value": summary["images_per_second"]},
        {"metric": "seconds per image (mining)", "value": summary["mine_seconds_per_image"]},
        {"metric": "shards written / skipped / total",
         "value": f"{summary['shards_written']} / {summary['shards_skipped']} / {summary['shards_total']}"},
    ]
    rows += [{"metric": f"errors: {k}", "value": v} for k, v in summary["errors"].items()]
    rows += [{"metric": f"skipped input paths: {k}", "value": v} for k, v in summary.get("skipped_paths", {}).items()]
    return rows


def summary_markdown(summary: dict[str, Any], stats: dict[str, Any] | None = None) -> str:
    """Markdown of a :class:`MineSummary` given as a dict, with the table statistics if any."""
    lines = [f"# Mining summary\n\nTable: `{summary['output_uri']}`\n", "| metric | value |", "|---|---|"]
    lines += [f"| {r['metric']} | {r['value']} |" for r in summary_rows(summary)]
    if stats:
        lines += ["", f"Whole table: {stats['images']} images, {stats['ok_images']} ok, {stats['masks']} masks; "
                      f"split train={stats['split'].get('train', 0)} val={stats['split'].get('val', 0)}."]
    if summary.get("dashboard_url"):
        lines += ["", f"Ray dashboard: {summary['dashboard_url']}"]
    return "\n".join(lines)


ProgressFn = Callable[[int, int, RunCounters], None]


def run_mine(job: MineJob, on_progress: ProgressFn | None = None) -> MineSummary:
    """Run the job: manifest → pending shards → backend → shards + ``summary.json`` under the output.

    ``on_progress(shards_done, shards_total, counters)`` is called after every shard written.
    """
    start = time.perf_counter()
    info = ensure_manifest(job.input_uri, job.output_uri, job.shard_size)
    _check_candidates(job, info)
    pending = [s for s in range(info.num_shards) if not is_complete(job.output_uri, s)]
    skipped = info.num_shards - len(pending)

    def written(_shard: int, counters: RunCounters) -> None:
        if on_progress is not None:
            on_progress(skipped + counters.shards_written, info.num_shards, counters)

    assembler = ShardAssembler(job.output_uri, info, pending, on_shard_written=written)
    dashboard = _run_backend(job, info, pending, assembler) if pending else None
    if assembler.remaining:
        raise RuntimeError(f"shards {assembler.remaining} did not receive all their rows; rerun to complete them")
    summary = _summarise(job, info, skipped, assembler.counters, time.perf_counter() - start, dashboard)
    storage.write_text(storage.join(job.output_uri, SUMMARY_FILE), summary.to_json())
    storage.write_text(storage.join(job.output_uri, SUMMARY_MD), summary.to_markdown() + "\n")
    _raise_if_failed(summary, assembler.counters)
    return summary


def _check_candidates(job: MineJob, info: ManifestInfo) -> None:
    """With a candidate file: refuse it at once when it matches none of the images (a wrong file or
    keys); images it does not cover become ``no_candidates`` error rows later."""
    miner = job.miner if job.miner_kind == "unsamv2" else None
    if miner is None or not miner.candidates:
        return
    from unsamv2.mining.candidates import load_candidates
    from unsamv2.pipeline.manifest import read_shard_entries

    uris = (u for s in range(info.num_shards) for u in read_shard_entries(job.output_uri, s).column("image_uri").to_pylist())
    load_candidates(miner.candidates, miner.candidate_min_score).check_matches(uris)  # streams, stops at a match


def _raise_if_failed(summary: MineSummary, c: RunCounters) -> None:
    """A run that left shards incomplete, or whose every image failed, is a failure, not exit 0."""
    if summary.shards_incomplete:
        raise IncompleteRunError(
            f"{summary.images_unavailable} images in {len(summary.shards_incomplete)} shards "
            f"{summary.shards_incomplete[:10]} could not be read (storage unavailable, e.g. {c.unavailable_example}); "
            f"those shards were left incomplete and a rerun of the same command picks them up.")
    if summary.images and not summary.ok_images:
        reasons = ", ".join(f"{k}={v}" for k, v in summary.errors.items())
        raise IncompleteRunError(
            f"every one of the {summary.images} images mined by this run failed ({reasons}); the error rows are "
            f"in {summary.output_uri}: check the inputs (unsamv2 table info {summary.output_uri}).")


def _run_backend(job: MineJob, info: ManifestInfo, pending: list[int], assembler: ShardAssembler) -> str | None:
    if job.backend == "local":
        from unsamv2.backends.local import run_stage_local

        run_stage_local(job.stage(), job.output_uri, pending, assembler, batch_size=job.batch_size)
        return None
    from unsamv2.backends.ray_data import RayMiningOptions, run_stage_ray

    options = RayMiningOptions(address=job.ray_address, actors=job.actors, batch_size=job.batch_size,
                               max_restarts=job.max_restarts)
    return run_stage_ray(job.stage(), job.output_uri, pending, assembler, options)


def _summarise(job: MineJob, info: ManifestInfo, skipped: int, c: RunCounters, seconds: float,
               dashboard: str | None) -> MineSummary:
    return MineSummary(
        output_uri=job.output_uri, images_total=info.num_images, shards_total=info.num_shards,
        shards_skipped=skipped, shards_written=c.shards_written, images=c.images, ok_images=c.ok_images,
        masks=c.masks, errors=dict(sorted(c.errors.items())), seconds=round(seconds, 3),
        images_per_second=round(c.images / seconds, 3) if seconds > 0 else 0.0,
        mine_seconds_per_image=round(c.mine_seconds / c.images, 4) if c.images else 0.0,
        duplicates_dropped=c.duplicates_dropped, skipped_non_images=info.skipped_non_images,
        dashboard_url=dashboard, images_unavailable=c.unavailable_images,
        skipped_paths={k: v for k, v in (("symlink_loops", info.skipped_symlink_loops),
                                         ("undecodable_names", info.skipped_undecodable_names),
                                         ("unreadable_dirs", info.skipped_unreadable_dirs)) if v},
        shards_incomplete=sorted(c.incomplete_shards),
    )
