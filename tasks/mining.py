"""Prefect tasks of the ``mine`` flow: plan, mine shards, statistics, publish.

Each task is a thin call into the library: it receives the validated
:class:`~unsamv2.jobs.mine.MineJob` (or URIs) and returns small JSON-able values (URIs, counts).
Mining is idempotent (finished shards have markers), so a Prefect retry resumes where it stopped.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from unsamv2.jobs.mine import MineJob


@task(name="plan-manifest", retries=2, retry_delay_seconds=5)
def plan_manifest(job: MineJob) -> dict[str, int]:
    """List the job's input once (streaming), cut it into shards, persist the plan; counts out."""
    from unsamv2.pipeline.manifest import ensure_manifest

    info = ensure_manifest(job.input_uri, job.output_uri, job.shard_size)
    get_run_logger().info("manifest: %d images in %d shards (%d non-image names skipped)",
                          info.num_images, info.num_shards, info.skipped_non_images)
    return {"images": info.num_images, "shards": info.num_shards, "skipped_non_images": info.skipped_non_images}


@task(name="connect-ray", retries=2, retry_delay_seconds=10)
def connect_ray(ray_address: str | None) -> str | None:
    """Start a local Ray or join the cluster at ``ray_address``; returns the dashboard URL."""
    from unsamv2.backends.ray_runtime import init_ray

    url = init_ray(ray_address)
    get_run_logger().info("Ray dashboard: %s", url or "(not available)")
    return url


@task(name="mine-shards", retries=1, retry_delay_seconds=10)
def mine_shards(job: MineJob, run_key: str) -> dict[str, Any]:
    """Run the mining job on every unfinished shard; updates a progress artifact; returns the
    run summary."""
    from unsamv2.jobs.mine import run_mine

    logger = get_run_logger()
    artifact = create_progress_artifact(0.0, key=f"{run_key}-progress", description=f"shards of {job.output_uri}")

    def progress(done: int, total: int, counters: Any) -> None:
        update_progress_artifact(artifact, 100.0 * done / max(total, 1))
        logger.info("shard %d/%d done: %d images, %d masks, %d errors this run", done, total,
                    counters.images, counters.masks, sum(counters.errors.values()))

    from tasks.limits import ray_gpu_slots

    # GPU jobs queue on the Prefect `ray-gpu` global concurrency limit instead of piling up on Ray.
    slots = ray_gpu_slots(job.actors, job.gpus_per_actor) if job.backend == "ray" else nullcontext()
    with slots:
        summary = run_mine(job, on_progress=progress)
    update_progress_artifact(artifact, 100.0)
    return asdict(summary)


@task(name="table-statistics", retries=1)
def table_statistics(table_uri: str, out_uri: str, val_fraction: float) -> dict[str, Any]:
    """Dask statistics and the train/val split of the mask table; returns the stats (small dict)."""
    from unsamv2.data.stats import compute_stats

    return asdict(compute_stats(table_uri, out_uri, val_fraction=val_fraction))


@task(name="publish-mining-summary")
def publish_mining_summary(summary: dict[str, Any], stats: dict[str, Any] | None, run_key: str) -> None:
    """Table + Markdown artifacts: images, masks, errors by reason, masks per image, throughput
    (rendered by the library: :func:`unsamv2.jobs.mine.summary_markdown`)."""
    from unsamv2.jobs.mine import summary_markdown, summary_rows

    create_table_artifact(summary_rows(summary), key=f"{run_key}-summary", description=f"mining of {summary['output_uri']}")
    create_markdown_artifact(summary_markdown(summary, stats), key=f"{run_key}-report", description="mining report")
