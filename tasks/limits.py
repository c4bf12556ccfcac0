"""Global concurrency limits shared by every flow that submits GPU work to Ray.

The Prefect server holds one global concurrency limit (default name ``ray-gpu``) whose limit is
the number of GPUs the Ray cluster may hand to Prefect-submitted jobs. A job that reserves GPUs
holds ``ceil(actors * gpus_per_actor)`` slots while it runs, so jobs queue in Prefect instead of
piling up as pending actors on the cluster. Create the limit once per Prefect server::

    prefect gcl create ray-gpu --limit 8

Use inside a task, around the code that submits the Ray work::

    with ray_gpu_slots(actors, gpus_per_actor):
        run_mine(job)

CPU-only jobs hold nothing. When the limit does not exist the block runs unlimited (Prefect logs a
warning), so local runs need no setup; ``strict=True`` turns that into an error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

from unsamv2.errors import InputError

RAY_GPU_LIMIT_ENV = "UNSAMV2_RAY_GPU_LIMIT"
DEFAULT_RAY_GPU_LIMIT = "ray-gpu"


def ray_gpu_limit_name() -> str:
    """The global concurrency limit's name: ``$UNSAMV2_RAY_GPU_LIMIT`` or ``ray-gpu``."""
    return os.environ.get(RAY_GPU_LIMIT_ENV) or DEFAULT_RAY_GPU_LIMIT


def gpu_slots(actors: int, gpus_per_actor: float) -> int:
    """Slots a Ray job holds: the whole GPUs its actors reserve, ``ceil(actors * gpus_per_actor)``.

    Fractional GPUs round up for the job as a whole (4 actors at 0.5 GPU hold 2 slots).
    """
    if actors < 0 or gpus_per_actor < 0:
        raise InputError(f"actors ({actors}) and gpus_per_actor ({gpus_per_actor}) must be >= 0.")
    # round() first so 3 * 0.1 counts as 0.3, not 0.30000000000000004 -> 1 slot either way,
    # but 10 * 0.1 stays exactly 1 instead of rounding up to 2.
    return math.ceil(round(actors * gpus_per_actor, 6))


@contextmanager
def ray_gpu_slots(actors: int, gpus_per_actor: float, *, limit_name: str | None = None,
                  timeout_seconds: float | None = None, strict: bool = False) -> Iterator[int]:
    """Hold :func:`gpu_slots` slots of the GPU limit while the block runs; yields the slot count.

    Waits (up to ``timeout_seconds``; ``None`` waits forever) until enough slots are free. Holds
    nothing for a CPU-only job. ``limit_name`` defaults to :func:`ray_gpu_limit_name`.
    """
    slots = gpu_slots(actors, gpus_per_actor)
    if slots == 0:
        yield 0
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(limit_name or ray_gpu_limit_name(), occupy=slots, timeout_seconds=timeout_seconds,
                     strict=strict):
        yield slots
