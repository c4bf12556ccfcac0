"""The ``train`` and ``pretrain`` use cases' one entry point: run a :class:`~unsamv2.train.config.TrainConfig`
in this process or on Ray Train workers.

:func:`run_train` is what ``unsamv2 train`` / ``unsamv2 pretrain`` and the ``mine-and-train``
flow's training task call. The job is the :class:`~unsamv2.train.config.TrainConfig` (validated
once; base pretraining is the same class with :data:`~unsamv2.train.config.PRETRAIN_DEFAULTS`);
where it runs is ``backend`` plus, for Ray, :class:`~unsamv2.backends.ray_train.RayTrainOptions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal, get_args

from unsamv2.backends.ray_train import RayTrainOptions
from unsamv2.errors import InputError
from unsamv2.train.config import TrainConfig

TrainBackend = Literal["local", "ray"]
TRAIN_BACKENDS: tuple[str, ...] = get_args(TrainBackend)


def run_train(config: TrainConfig, *, backend: TrainBackend = "local", ray: RayTrainOptions | None = None,
              resume: bool = False, on_step: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Train ``config`` here (``local``) or on Ray Train workers (``ray``, with ``ray`` options:
    DDP, rank 0 writes the checkpoints); ``resume`` continues from the output's latest checkpoint.
    ``on_step(StepLog)`` is called after every step of a local run (Ray workers report nothing
    here). Returns the :class:`~unsamv2.train.recipe.TrainResult` as a dict (``summary.json``)."""
    if backend not in TRAIN_BACKENDS:
        raise InputError(f"the training backend must be one of {', '.join(TRAIN_BACKENDS)}, got {backend!r}.")
    if backend == "ray":
        from unsamv2.backends.ray_train import run_ray_train

        return run_ray_train(config, ray or RayTrainOptions(), resume=resume)
    from unsamv2.train import train

    return asdict(train(config, resume=resume, on_step=on_step))
