"""The Ray Train backend: the training recipe on ``TorchTrainer`` workers (DDP).

Each worker runs :func:`unsamv2.train.train` unchanged; Ray Train sets up the process group
(gloo on CPU, NCCL on GPU) and the recipe wraps its model in DistributedDataParallel. Rank 0
writes the run's checkpoints to ``config.output_uri`` and also reports each one to Ray Train,
which keeps a copy under ``storage_path/name``. Rerunning with the same ``RunConfig(name,
storage_path)`` resumes: the workers get Ray's latest checkpoint (or, with ``resume``, the
output's latest one, whichever is newer) and continue exactly.

For several nodes, ``output_uri`` and ``storage_path`` must be storage every node sees
(``s3://...``); the mask table and images too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from unsamv2.data import storage
from unsamv2.train.config import TrainConfig


@dataclass(frozen=True)
class RayTrainOptions:
    """How to run on Ray Train, validated once. ``ray_address=None`` starts (or reuses) a local Ray.
    ``gpus_per_worker`` None: 1 when the cluster has GPUs, else 0. ``run_name`` / ``storage_path``
    default to ``unsamv2-train-<config hash>`` and ``<output_uri>/ray``."""

    ray_address: str | None = None
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    run_name: str | None = None
    storage_path: str | None = None
    max_failures: int = 0

    def __post_init__(self) -> None:
        from unsamv2.errors import InputError

        checks = [(self.workers >= 1, f"workers must be at least 1, got {self.workers}"),
                  (self.cpus_per_worker > 0, f"cpus_per_worker must be > 0, got {self.cpus_per_worker}"),
                  (self.gpus_per_worker is None or self.gpus_per_worker >= 0,
                   f"gpus_per_worker must be >= 0, got {self.gpus_per_worker}"),
                  (self.max_failures >= 0, f"max_failures must be >= 0, got {self.max_failures}")]
        for ok, message in checks:
            if not ok:
                raise InputError(message + "; fix the Ray Train options.")


def run_name(config: TrainConfig, options: RayTrainOptions) -> str:
    """The Ray Train run name: the given one, else from the config hash (stable across reruns)."""
    return options.run_name or f"unsamv2-train-{config.config_hash()}"


def storage_path(config: TrainConfig, options: RayTrainOptions) -> str:
    """Where Ray Train persists its checkpoints (absolute for local paths)."""
    path = options.storage_path or storage.join(config.output_uri, "ray")
    return path if storage.is_remote(path) else os.path.abspath(path)


def worker_gpus(options: RayTrainOptions) -> float:
    """GPUs per worker: the given number, else 1 when the connected cluster has GPUs, else 0
    (starts or joins Ray at ``options.ray_address`` if not connected yet)."""
    import ray

    from unsamv2.backends.ray_runtime import init_ray

    if options.gpus_per_worker is not None:
        return float(options.gpus_per_worker)
    if not ray.is_initialized():
        init_ray(options.ray_address)
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def scaling(options: RayTrainOptions) -> Any:
    """The ``ScalingConfig``: GPUs when asked for, or when the cluster has some."""
    from ray.train import ScalingConfig

    gpus = worker_gpus(options)
    resources = {"CPU": float(options.cpus_per_worker)}
    if gpus > 0:
        resources["GPU"] = float(gpus)
    return ScalingConfig(num_workers=int(options.workers), use_gpu=gpus > 0, resources_per_worker=resources)


def run_ray_train(config: TrainConfig, options: RayTrainOptions, *, resume: bool = False) -> dict[str, Any]:
    """Train on Ray Train workers; returns the rank-0 :class:`~unsamv2.train.TrainResult` as a dict."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    from unsamv2.backends.ray_runtime import init_ray

    init_ray(options.ray_address)
    run_config = RunConfig(
        name=run_name(config, options), storage_path=storage_path(config, options),
        failure_config=FailureConfig(max_failures=options.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=config.keep_checkpoints or None))
    trainer = TorchTrainer(_worker, train_loop_config={"config": config.to_dict(), "resume": bool(resume)},
                           scaling_config=scaling(options), run_config=run_config)
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    from unsamv2.train.summary import read_summary

    return read_summary(config.output_uri)  # written by rank 0 at the end (shared storage)


# ------------------------------------------------------------------------------------ on the workers
def _worker(loop_config: dict[str, Any]) -> None:
    """``train_loop_per_worker``: resume from the newest checkpoint, train (reporting each checkpoint)."""
    import ray.train
    import torch

    from unsamv2.train import train

    if torch.cuda.is_available():
        import ray.train.torch

        torch.cuda.set_device(ray.train.torch.get_device())
    config = TrainConfig.from_dict(loop_config["config"])
    ray_checkpoint = ray.train.get_checkpoint()
    if ray_checkpoint is None:
        train(config, resume=loop_config["resume"], on_checkpoint=_report)
        return
    with ray_checkpoint.as_directory() as local:
        train(config, resume=_newer(config, local, loop_config["resume"]), on_checkpoint=_report)


def _newer(config: TrainConfig, ray_dir: str, resume: bool) -> bool | str:
    """Ray's checkpoint folder, or True (the output's latest) when that one is newer (rank 0 decides)."""
    from unsamv2.train import dist
    from unsamv2.train.checkpoint import latest_checkpoint, read_checkpoint

    choice = None
    if dist.rank_and_world()[0] == 0:
        latest = latest_checkpoint(config.output_uri) if resume else None
        newer = latest is not None and read_checkpoint(latest).step > read_checkpoint(ray_dir).step
        choice = "output" if newer else "ray"
    return True if dist.broadcast_from_main(choice) == "output" else ray_dir


def _report(uri: str | None, step: int, metrics: dict[str, Any]) -> None:
    """Report a checkpoint the recipe just wrote (rank 0 passes its folder, others None)."""
    import tempfile

    import ray.train
    from ray.train import Checkpoint

    values = {"step": step, **{k: float(v) for k, v in metrics.items()}}
    if uri is None:
        ray.train.report(values)
        return
    name = f"step-{step:06d}"
    if not storage.is_remote(uri):
        ray.train.report(values, checkpoint=Checkpoint.from_directory(uri), checkpoint_dir_name=name,
                         delete_local_checkpoint_after_upload=False)
        return
    with tempfile.TemporaryDirectory(prefix="unsamv2-ckpt-") as local:
        fs, path = storage.filesystem(uri)
        fs.get(path.rstrip("/") + "/", local + "/", recursive=True)
        ray.train.report(values, checkpoint=Checkpoint.from_directory(local), checkpoint_dir_name=name)
