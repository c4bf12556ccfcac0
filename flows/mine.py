"""Flow ``mine``: images (folder or s3:// prefix) → Parquet mask table, statistics and split.

Runs the ``MinerStage`` on a local Ray (``ray_address=None``) or an existing Ray cluster, or
in-process (``backend="local"``). Reruns resume: finished shards are skipped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from pydantic import Field

from tasks.mining import (
    connect_ray,
    mine_shards,
    plan_manifest,
    publish_mining_summary,
    table_statistics,
)

PositiveInt = Annotated[int, Field(ge=1)]


@flow(name="mine", description="Mine hierarchical pseudo-masks (UnSAMv2 divide and conquer) into a Parquet mask table.")
def mine(
    input_uri: str,
    output_uri: str,
    shard_size: PositiveInt = 256,
    backend: Literal["local", "ray"] = "ray",
    features: Literal["descriptor", "dinov2", "dinov3"] = "descriptor",
    backbone_weights: str | None = None,
    device: Literal["cpu", "cuda"] = "cpu",
    actors: PositiveInt = 1,
    cpus_per_actor: Annotated[float, Field(gt=0)] = 1.0,
    gpus_per_actor: Annotated[float, Field(ge=0)] = 0.0,
    batch_size: PositiveInt = 4,
    ray_address: str | None = None,
    max_restarts: Annotated[int, Field(ge=0)] = 4,
    statistics: bool = True,
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1,
    miner_kind: Literal["unsamv2", "noop"] = "unsamv2",
    candidates: str | None = None,
    candidate_min_score: Annotated[float, Field(ge=0, lt=1)] = 0.3,
) -> dict[str, Any]:
    """Plan → (connect Ray) → mine shards → statistics and split → artifacts. Returns the summary."""
    logger = get_run_logger()
    plan = plan_manifest(input_uri, output_uri, shard_size)
    logger.info("planned %d images in %d shards", plan["images"], plan["shards"])
    if backend == "ray":
        connect_ray(ray_address)
    job = dict(input_uri=input_uri, output_uri=output_uri, shard_size=shard_size, backend=backend,
               batch_size=batch_size, actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor,
               ray_address=ray_address, max_restarts=max_restarts, miner_kind=miner_kind,
               miner={"backbone": features, "backbone_weights": backbone_weights, "device": device,
                      "candidates": candidates, "candidate_min_score": candidate_min_score})
    summary = mine_shards(job, run_key="mine")
    stats = table_statistics(output_uri, f"{output_uri.rstrip('/')}/stats", val_fraction) if statistics else None
    publish_mining_summary(summary, stats, run_key="mine")
    logger.info("mined %d images (%d masks, errors %s); table at %s", summary["images"], summary["masks"],
                summary["errors"] or "none", output_uri)
    return {"summary": summary, "stats": stats, "table_uri": output_uri}
