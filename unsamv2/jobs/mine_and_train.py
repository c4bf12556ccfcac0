"""The ``mine-and-train`` pipeline's jobs, built and validated once from its nested parameters.

The flow takes one dict per use case — ``mining`` (the ``mine`` flow's parameters: MineJob and
MinerConfig fields, plus ``val_fraction``), ``training`` (TrainConfig fields), ``evaluation``
(EvalJob fields) — and ``ray_train`` (RayTrainOptions fields) for the Ray backends.
:func:`plan_mine_and_train` turns them into typed jobs before any work, so a bad value stops the
run at once with one sentence, and decides what the flow used to: where everything goes under
``output_uri`` and the few values that follow from the others (below).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from unsamv2.backends.ray_train import RayTrainOptions
from unsamv2.data import storage
from unsamv2.data.split import DEFAULT_VAL_FRACTION, check_val_fraction
from unsamv2.errors import InputError
from unsamv2.eval.checkpoint import EvalJob
from unsamv2.jobs.fields import defaults, known
from unsamv2.jobs.mine import MineJob
from unsamv2.train.config import TrainConfig

#: Where training runs: here, on Ray Train workers, or as a Ray Job on a cluster's job server.
PipelineTrainBackend = Literal["local", "ray", "ray-job"]
#: Keys of ``mining`` that are not job fields: the statistics step's.
STATS_KEYS = ("val_fraction",)


@dataclass(frozen=True)
class MineAndTrainPlan:
    """Every job of one ``mine-and-train`` run and where its outputs go (``output_uri``'s
    ``mask_table/``, ``train/``, ``report/``, ``summary.md``). ``mining``: the ``mine`` flow's
    parameters (those ``mine_job`` was built from)."""

    table_uri: str
    train_uri: str
    report_uri: str
    summary_uri: str
    mining: dict[str, Any]
    mine_job: MineJob
    val_fraction: float
    train: TrainConfig
    train_backend: PipelineTrainBackend
    ray_train: RayTrainOptions
    job_address: str | None
    evaluation: EvalJob


def plan_mine_and_train(input_uri: str, output_uri: str, *, mining: Mapping[str, Any] | None = None,
                        training: Mapping[str, Any] | None = None, evaluation: Mapping[str, Any] | None = None,
                        train_backend: str = "local", ray_train: Mapping[str, Any] | None = None,
                        job_address: str | None = None) -> MineAndTrainPlan:
    """Validate the parameters once and build the run's jobs. Values that follow from others
    when not given: ``training.trainable`` is ``full`` for the random ``tiny`` model without a
    ``base_checkpoint`` (else the job's default, ``adapter``); ``ray_train.ray_address`` and, when
    the evaluation reserves ``gpus``, ``evaluation.ray_address`` are the mining's (or a local Ray);
    ``evaluation.device`` is ``cuda`` with ``gpus``, else ``cpu`` when training runs on the CPU,
    else ``auto``."""
    if train_backend not in get_args(PipelineTrainBackend):
        raise InputError(f"train_backend must be one of {', '.join(get_args(PipelineTrainBackend))}, "
                         f"got {train_backend!r}.")
    if train_backend == "ray-job" and not job_address:
        raise InputError("train_backend 'ray-job' needs job_address, the cluster's job server URL "
                         "(e.g. http://ray-head:8265).")
    table, train_dir, report = (storage.join(output_uri, n) for n in ("mask_table", "train", "report"))
    mining = dict(mining or {})
    val_fraction = check_val_fraction(mining.get("val_fraction", DEFAULT_VAL_FRACTION))
    mine_job = MineJob.from_values({"input_uri": input_uri, "output_uri": table,
                                    **{k: v for k, v in mining.items() if k not in STATS_KEYS}})
    config = _train_config(table, train_dir, training or {})
    ray_values = known(RayTrainOptions, ray_train or {}, "ray_train")
    ray_values.setdefault("ray_address", mine_job.ray_address)
    return MineAndTrainPlan(
        table_uri=table, train_uri=train_dir, report_uri=report, summary_uri=storage.join(output_uri, "summary.md"),
        mining=mining, mine_job=mine_job, val_fraction=val_fraction, train=config,
        train_backend=cast(PipelineTrainBackend, train_backend),
        ray_train=RayTrainOptions(**ray_values), job_address=job_address,
        evaluation=_eval_job(evaluation or {}, mine_job, config))


def _train_config(table: str, train_dir: str, training: Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig of ``training`` (the table and output are the run's)."""
    values = dict(training)
    for key in ("table_uri", "output_uri"):
        if key in values:
            raise InputError(f"training.{key} is set by the flow (under output_uri); leave it out.")
    if "trainable" not in values:  # a random tiny model has nothing to adapt: train all of it
        tiny = values.get("model_config", "base") == "tiny" and values.get("base_checkpoint") is None
        values["trainable"] = "full" if tiny else defaults(TrainConfig)["trainable"]
    return TrainConfig.from_dict({**values, "table_uri": table, "output_uri": train_dir})


def _eval_job(evaluation: Mapping[str, Any], mine_job: MineJob, config: TrainConfig) -> EvalJob:
    """The EvalJob of ``evaluation``: a Ray task on the mining's cluster when it reserves GPUs."""
    values = known(EvalJob, evaluation, "evaluation")
    gpus = values.get("gpus", defaults(EvalJob)["gpus"])
    gpus = gpus if isinstance(gpus, (int, float)) else 0.0  # EvalJob refuses a bad value below
    if gpus > 0:
        values.setdefault("ray_address", mine_job.ray_address or "local")
    values.setdefault("device", "cuda" if gpus > 0 else ("cpu" if config.device == "cpu" else "auto"))
    return EvalJob(**values)
