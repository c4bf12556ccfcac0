"""Flow ``mine-and-train``: images -> mask table, statistics and split (the ``mine`` flow) -> train
the granularity adapter -> evaluate the new checkpoint on the held-out procedural benchmark (and
any COCO-format datasets) -> report.

Everything lands under ``output_uri`` (a folder or ``s3://`` prefix)::

    mask_table/            the mined table (mask_table/stats: statistics and train/val split)
    train/                 checkpoints/, summary.json, loss.png
    report/                report.html, report.md, report.json, plots/, probe.json
    summary.md             what the flow's Markdown artifact says

Training runs in the flow's process (``train_backend="local"``), on Ray Train workers of the Ray
the flow is connected to (``"ray"``), or as a Ray Job on an existing cluster whose job server is
``job_address`` (``"ray-job"``: a stable submission id, so a Prefect retry attaches to the job it
started). The evaluation runs in the flow's process, or as a Ray task holding ``eval_gpus`` GPUs
when that is > 0 (the flow's process, e.g. a Kubernetes pod, needs no GPU). A rerun with the same
``output_uri`` skips finished shards and resumes training.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from pydantic import Field

from flows.mine import mine
from tasks.evaluation import evaluate_checkpoint
from tasks.mining import connect_ray
from tasks.training import (
    make_train_config,
    publish_training_report,
    submit_training_job,
    train_adapter,
)
from unsamv2.eval.checkpoint import DEFAULT_SCENES, EvalJob

PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0)]


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


@flow(name="mine-and-train",
      description="Mine (mask, g) pairs, fine-tune the UnSAMv2 granularity adapter, evaluate it, report.")
def mine_and_train(
    input_uri: str,
    output_uri: str,
    # mining (see the mine flow)
    shard_size: PositiveInt = 256,
    mine_backend: Literal["local", "ray"] = "ray",
    features: Literal["descriptor", "dinov2", "dinov3"] = "descriptor",
    backbone_weights: str | None = None,
    mine_device: Literal["cpu", "cuda"] = "cpu",
    actors: PositiveInt = 1,
    cpus_per_actor: PositiveFloat = 1.0,
    gpus_per_actor: Annotated[float, Field(ge=0)] = 0.0,
    ray_address: str | None = None,
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1,
    # training (TrainConfig; defaults are the paper's recipe)
    model: str = "base",
    base_checkpoint: str | None = None,
    trainable: Literal["adapter", "full"] | None = None,
    steps: PositiveInt = 1000,
    train_batch_size: PositiveInt = 4,
    max_masks_per_image: PositiveInt = 30,
    correction_clicks: Annotated[int, Field(ge=0)] = 3,
    lr: PositiveFloat = 1e-4,
    min_lr: PositiveFloat = 1e-5,
    seed: Annotated[int, Field(ge=0)] = 0,
    checkpoint_every: PositiveInt = 500,
    train_device: Literal["auto", "cpu", "cuda"] = "auto",
    human_coco_uri: str | None = None,
    human_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0,
    train_backend: Literal["local", "ray", "ray-job"] = "local",
    train_workers: PositiveInt = 1,
    cpus_per_worker: PositiveFloat = 1.0,
    gpus_per_worker: Annotated[float, Field(ge=0)] | None = None,
    job_address: str | None = None,
    # evaluation
    eval_scenes: str | None = DEFAULT_SCENES,
    eval_datasets: list[str] = [],  # noqa: B006 - Prefect parameters are copied per run
    eval_policies: list[str] = ["oracle", "g=1"],  # noqa: B006
    eval_whole_image: bool = False,
    eval_points_per_side: PositiveInt = 16,
    eval_max_clicks: PositiveInt = 20,
    eval_max_objects: PositiveInt | None = None,
    eval_probe: bool = True,
    eval_gpus: Annotated[float, Field(ge=0)] = 0.0,
    history_uri: str | None = None,
) -> dict[str, Any]:
    """mine -> stats/split -> train -> evaluate -> report. Returns URIs and the key numbers."""
    logger = get_run_logger()
    if train_backend == "ray-job" and not job_address:
        raise ValueError("train_backend='ray-job' needs job_address, the cluster's job server URL "
                         "(e.g. http://ray-head:8265).")
    table, train_dir, report_dir = (_join(output_uri, n) for n in ("mask_table", "train", "report"))
    if trainable is None:  # the paper: adapt a pretrained SAM-2 (the random tiny model: train all of it)
        trainable = "full" if model == "tiny" and base_checkpoint is None else "adapter"
    evaluation_job = EvalJob(  # validated here, before any work
        scenes=eval_scenes, datasets=tuple(eval_datasets), policies=tuple(eval_policies),
        whole_image=eval_whole_image, points_per_side=eval_points_per_side, max_clicks=eval_max_clicks,
        max_objects=eval_max_objects, probe=eval_probe, history_uri=history_uri, gpus=eval_gpus,
        ray_address=(ray_address or "local") if eval_gpus > 0 else None,  # a Ray task on a GPU, else here
        device="cuda" if eval_gpus > 0 else ("cpu" if train_device == "cpu" else "auto"))
    config = make_train_config({
        "table_uri": table, "output_uri": train_dir, "split_uri": _join(table, "stats"),
        "model_config": model, "base_checkpoint": base_checkpoint, "trainable": trainable,
        "max_steps": steps, "batch_size": train_batch_size, "max_masks_per_image": max_masks_per_image,
        "correction_clicks": correction_clicks, "lr": lr, "min_lr": min_lr, "seed": seed,
        "checkpoint_every": checkpoint_every, "device": train_device, "human_coco_uri": human_coco_uri,
        "human_fraction": human_fraction})
    mined = mine(input_uri=input_uri, output_uri=table, shard_size=shard_size, backend=mine_backend,
                 features=features, backbone_weights=backbone_weights, device=mine_device, actors=actors,
                 cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor, ray_address=ray_address,
                 statistics=True, val_fraction=val_fraction)
    logger.info("mask table %s: %d masks; split %s", table, mined["stats"]["masks"], mined["stats"]["split"])
    if train_backend == "ray-job":
        training = submit_training_job(config, job_address, workers=train_workers,
                                       cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker)
    elif train_backend == "ray":
        if mine_backend != "ray":
            connect_ray(ray_address)
        training = train_adapter(config, "ray", {"workers": train_workers, "cpus_per_worker": cpus_per_worker,
                                                 "gpus_per_worker": gpus_per_worker})
    else:
        training = train_adapter(config, "local", run_key="mine-and-train-train")
    evaluation = evaluate_checkpoint(training["checkpoint_uri"], report_dir, evaluation_job)
    summary = publish_training_report(training, evaluation, _join(output_uri, "summary.md"))
    logger.info("checkpoint %s; report %s", training["checkpoint_uri"], evaluation["files"]["html"])
    return {"table_uri": table, "training": training, "checkpoint_uri": training["checkpoint_uri"],
            "report": evaluation["files"], "metrics": evaluation["metrics"], "probe": evaluation["probe"],
            "summary_uri": summary}
