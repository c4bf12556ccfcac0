"""Run one function as a Ray task on a cluster (e.g. an evaluation that needs a GPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def call_on_ray(fn: Callable[..., T], *args: Any, address: str | None, num_gpus: float = 0.0,
                num_cpus: float = 1.0, max_retries: int = 1, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` as a Ray task with the given resources; returns its result.

    ``address`` as in :func:`unsamv2.backends.ray_runtime.init_ray` (None starts a local Ray). The
    function must be importable on the workers (a module-level function of this package) and its
    inputs/outputs small (URIs, dicts): data goes through shared storage, not the object store.
    """
    import ray

    from unsamv2.backends.ray_runtime import init_ray

    init_ray(address, include_dashboard=False)
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(fn)
    return ray.get(task.remote(*args, **kwargs))
