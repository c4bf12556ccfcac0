"""Flow ``pretrain``: train a SAM-2 base from scratch with SAM-2's supervised recipe on a mask
table of human (ground-truth) masks — what ``unsamv2 pretrain`` does (docs/pretraining.md).

Everything lands under ``output_uri`` (a folder or ``s3://`` prefix): ``checkpoints/step-N/``
(``sam2.pt``, the official SAM-2 layout every command takes as a base checkpoint), ``summary.json``
and ``loss.png``.

The settings are one dict, ``training``: TrainConfig fields laid over
:data:`~unsamv2.train.config.PRETRAIN_DEFAULTS` (``{}``: the ``unsamv2 pretrain`` defaults). Run from
a deployment, the dict given with the run is laid over the deployment's (``-p training='{"max_steps":
50}'`` changes one value and keeps the deployment's others);
:func:`unsamv2.jobs.train.plan_pretrain` validates it before any work. Training runs in the
flow's process (``train_backend="local"``, with a progress artifact) or on Ray Train workers
(``"ray"``, with ``ray_train``: RayTrainOptions fields). A rerun with the same ``output_uri``
resumes from the latest checkpoint.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.parameters import over_deployment
from tasks.training import pretrain_base
from unsamv2.jobs.train import TrainBackend, plan_pretrain


@flow(name="pretrain", description="Pretrain a SAM-2 base from scratch on human masks with SAM-2's supervised recipe.")
def pretrain(
    table_uri: str,
    output_uri: str,
    training: dict[str, Any] | None = None,
    train_backend: TrainBackend = "local",
    ray_train: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """table -> SAM-2 pretraining -> checkpoints. Returns the checkpoint URI, its ``sam2.pt``
    (``weights_uri``), the steps, the first and final loss and the training summary."""
    logger = get_run_logger()
    nested = over_deployment({"training": training, "ray_train": ray_train})
    plan = plan_pretrain(table_uri, output_uri, train_backend=train_backend, **nested)  # before any work
    result = pretrain_base(plan.train, plan.backend, plan.ray_train, run_key="pretrain")
    logger.info("pretrained to step %d; weights %s", result["steps"], result["model_uri"])
    return {"checkpoint_uri": result["checkpoint_uri"], "weights_uri": result["model_uri"],
            "steps": result["steps"], "first_loss": result["first_loss"], "final_loss": result["final_loss"],
            "training": result}
