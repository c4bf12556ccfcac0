"""The ``train`` and ``pretrain`` use cases' one entry point: run a :class:`~unsamv2.train.config.TrainConfig`
in this process or on Ray Train workers.

:func:`run_train` is what ``unsamv2 train`` / ``unsamv2 pretrain`` and the ``mine-and-train``
and ``pretrain`` flows' training task call. The job is the :class:`~unsamv2.train.config.TrainConfig`
(validated once; base pretraining is the same class with
:data:`~unsamv2.train.config.PRETRAIN_DEFAULTS`, the ``pretrain`` flow's built by
:func:`plan_pretrain`); where it runs is
``backend`` plus, for Ray, :class:`~unsamv2.backends.ray_train.RayTrainOptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, get_args

from unsamv2.backends.ray_train import RayTrainOptions
from unsamv2.errors import InputError
from unsamv2.jobs.fields import known
from unsamv2.train.config import PRETRAIN_DEFAULTS, TrainConfig

TrainBackend = Literal["local", "ray"]
TRAIN_BACKENDS: tuple[str, ...] = get_args(TrainBackend)


@dataclass(frozen=True)
class PretrainPlan:
    """The ``pretrain`` flow's job and where it runs (built by :func:`plan_pretrain`)."""

    train: TrainConfig
    backend: TrainBackend
    ray_train: RayTrainOptions


def plan_pretrain(table_uri: str, output_uri: str, *, training: Mapping[str, Any] | None = None,
                  train_backend: str = "local", ray_train: Mapping[str, Any] | None = None) -> PretrainPlan:
    """Validate the ``pretrain`` flow's parameters once, before any work: ``training`` (TrainConfig
    fields) laid over :data:`~unsamv2.train.config.PRETRAIN_DEFAULTS` on ``table_uri`` into
    ``output_uri``, the backend, and ``ray_train`` (RayTrainOptions fields). A bad value is an
    :class:`~unsamv2.errors.InputError` with one sentence."""
    if train_backend not in TRAIN_BACKENDS:
        raise InputError(f"train_backend must be one of {', '.join(TRAIN_BACKENDS)}, got {train_backend!r}.")
    values = dict(training or {})
    for key in ("table_uri", "output_uri"):
        if key in values:
            raise InputError(f"training.{key} is given as the {key} parameter; leave it out of training.")
    config = TrainConfig.from_dict({**PRETRAIN_DEFAULTS, **values, "table_uri": table_uri, "output_uri": output_uri})
    options = RayTrainOptions(**known(RayTrainOptions, ray_train or {}, "ray_train"))
    return PretrainPlan(train=config, backend=cast(TrainBackend, train_backend), ray_train=options)


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
