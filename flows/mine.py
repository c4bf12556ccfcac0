"""Flow ``mine``: images (folder or s3:// prefix) → Parquet mask table, statistics and split.

The parameters are the mining job's fields (:class:`~unsamv2.jobs.mine.MineJob`, then the miner's,
:class:`~unsamv2.mining.config.MinerConfig`) with the same names and defaults, plus the statistics
step's; the job validates them once, before any work. Mines in-process (``backend="local"``, the
default) or on Ray actors (``"ray"``: a local Ray when ``ray_address`` is None, else that
cluster). Reruns resume: finished shards are skipped.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from tasks.mining import (
    connect_ray,
    mine_shards,
    plan_manifest,
    publish_mining_summary,
    table_statistics,
)
from unsamv2.data.split import DEFAULT_VAL_FRACTION, check_val_fraction
from unsamv2.jobs.mine import MineBackend, MineJob, MinerKind
from unsamv2.mining.config import Backbone, MinerConfig, Normalization

#: Parameters of the statistics step, not of the mining job.
STATS_PARAMETERS = ("statistics", "val_fraction")


@flow(name="mine", description="Mine hierarchical pseudo-masks (UnSAMv2 divide and conquer) into a Parquet mask table.")
def mine(
    input_uri: str,
    output_uri: str,
    shard_size: int = MineJob.shard_size,
    backend: MineBackend = MineJob.backend,
    actors: int = MineJob.actors,
    cpus_per_actor: float = MineJob.cpus_per_actor,
    gpus_per_actor: float = MineJob.gpus_per_actor,
    batch_size: int = MineJob.batch_size,
    ray_address: str | None = MineJob.ray_address,
    max_restarts: int = MineJob.max_restarts,
    read_attempts: int = MineJob.read_attempts,
    miner_kind: MinerKind = MineJob.miner_kind,
    backbone: Backbone = MinerConfig.backbone,
    backbone_weights: str | None = MinerConfig.backbone_weights,
    backbone_normalization: Normalization = MinerConfig.backbone_normalization,
    device: str = MinerConfig.device,
    candidates: str | None = MinerConfig.candidates,
    candidate_min_score: float = MinerConfig.candidate_min_score,
    statistics: bool = True,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> dict[str, Any]:
    """Plan → (connect Ray) → mine shards → statistics and split → artifacts. Returns the summary."""
    params = dict(locals())  # exactly this flow's parameters
    job = MineJob.from_values({k: v for k, v in params.items() if k not in STATS_PARAMETERS})
    check_val_fraction(val_fraction)
    logger = get_run_logger()
    plan = plan_manifest(job)
    logger.info("planned %d images in %d shards", plan["images"], plan["shards"])
    if job.backend == "ray":
        connect_ray(job.ray_address)
    summary = mine_shards(job, run_key="mine")
    stats = table_statistics(output_uri, f"{output_uri.rstrip('/')}/stats", val_fraction) if statistics else None
    publish_mining_summary(summary, stats, run_key="mine")
    logger.info("mined %d images (%d masks, errors %s); table at %s", summary["images"], summary["masks"],
                summary["errors"] or "none", output_uri)
    return {"summary": summary, "stats": stats, "table_uri": output_uri}
