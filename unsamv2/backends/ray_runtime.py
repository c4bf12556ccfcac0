"""Connecting to Ray: one place for every Ray user of the project (mining, Ray Train, Ray Jobs,
remote evaluation, the Prefect tasks).

:func:`init_ray` joins the cluster at an address (or ``$RAY_ADDRESS``) or starts a local instance.
A local instance listens on 127.0.0.1 only (metrics export port included) and keeps its session
files in a private per-user folder. :func:`_forwarded_env` is what reaches every worker: non-secret
settings (``UNSAMV2_*``, the S3 endpoint and region), never credentials, never ``UNSAMV2_FAULT_*``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ray._private.worker import BaseContext, RayContext

log = logging.getLogger(__name__)

FORWARDED_ENV_PREFIXES = ("UNSAMV2_",)
FORWARDED_ENV = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's loopback-only, single-node mode
NEVER_FORWARDED_PREFIXES = ("UNSAMV2_FAULT_",)  # test switches of old; nothing reads them, none reach workers


def _forwarded_env() -> dict[str, str]:
    """Non-secret settings the workers need (``UNSAMV2_*`` switches, S3 endpoint); never credentials,
    never ``UNSAMV2_FAULT_*``.

    Inside a Ray Job's driver, keys the job's own runtime env already sets are left out: the job's
    values reach the workers anyway, and Ray refuses a ``ray.init`` that sets the same key again.
    """
    taken = _job_env_keys()
    return {k: v for k, v in os.environ.items()
            if (k.startswith(FORWARDED_ENV_PREFIXES) or k in FORWARDED_ENV)
            and not k.startswith(NEVER_FORWARDED_PREFIXES) and k not in taken}


def _job_env_keys() -> set[str]:
    """Environment variable keys set by the runtime env of the Ray Job this process is the
    driver of (Ray passes the job config in ``RAY_JOB_CONFIG_JSON_ENV_VAR``); empty otherwise."""
    import json

    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not raw:
        return set()
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return set()
    return set((runtime_env.get("env_vars") or {}).keys())


def init_ray(address: str | None = None, *, include_dashboard: bool = True, num_cpus: int | None = None) -> str | None:
    """Connect to the Ray cluster at ``address`` (or ``$RAY_ADDRESS``) or start a local one; returns
    the dashboard URL.

    Reuses an already initialised Ray. A local instance is a single-machine node on 127.0.0.1: its
    dashboard, metrics export port and other listeners bind to loopback only, and its session
    files live in a private per-user folder (``$TMPDIR``/``/tmp`` + ``unsamv2-<uid>/ray``, mode
    0700, checked before reuse; ``RAY_TMPDIR`` set: Ray's own choice), not in ``/tmp/ray``, which
    every user shares.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address.startswith("ray://"):
        from unsamv2.errors import InputError

        raise InputError(
            f"Ray Client addresses ({address}) do not work with Ray Data in Ray 2.60; run the flow on a "
            "node of the cluster with address 'auto' (or head-ip:6379), or submit it as a Ray Job."
        )
    runtime_env = {"env_vars": _forwarded_env()}
    if address:
        ctx = ray.init(address=address, runtime_env=runtime_env, ignore_reinit_error=True)
    else:
        ctx = _start_local_ray(runtime_env, include_dashboard=include_dashboard, num_cpus=num_cpus)
    url = _address_info(ctx).get("webui_url") if include_dashboard else None
    return f"http://{url}" if url and "://" not in url else (url or None)


def _address_info(ctx: BaseContext) -> dict[str, str | None]:
    """The node addresses of a ``ray.init`` result: typed as BaseContext, it is a RayContext for a
    driver (Ray Client, whose context has none, is refused above)."""
    return cast("RayContext", ctx).address_info


def _start_local_ray(runtime_env: dict[str, Any], *, include_dashboard: bool, num_cpus: int | None) -> Any:
    """``ray.init`` of a new local instance on loopback with private session files (see init_ray)."""
    import ray

    kwargs: dict[str, Any] = {"num_cpus": num_cpus, "include_dashboard": include_dashboard,
                              "dashboard_host": "127.0.0.1", "runtime_env": runtime_env, "ignore_reinit_error": True}
    if ray.is_initialized():
        return ray.init(**kwargs)
    if "RAY_TMPDIR" not in os.environ:
        from unsamv2.backends.private_dirs import private_runtime_dir

        kwargs["_temp_dir"] = str(private_runtime_dir() / "ray")
    with _single_machine_node():
        ctx = ray.init(**kwargs)
    node_ip = _address_info(ctx).get("node_ip_address")
    if node_ip != "127.0.0.1":
        log.warning("the local Ray node has address %s, not 127.0.0.1: its metrics port may listen on all "
                    "interfaces (this Ray version ignored its single-machine setting)", node_ip)
    return ctx


def _ray_constants() -> Any:
    """Ray's private constants module (its attributes vary by Ray version), or None."""
    try:
        from ray._private import ray_constants
    except ImportError:
        return None
    return ray_constants


@contextlib.contextmanager
def _single_machine_node() -> Iterator[None]:
    """Ray's single-machine mode while a local node starts: the node takes 127.0.0.1 as its address,
    so Ray binds its metrics export port and agents to loopback instead of all interfaces.

    This is what ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` selects (the default on macOS and Windows).
    The processes Ray starts now (GCS, raylet, dashboard and its agents, hence every worker and job
    driver) inherit the variable; this process read it at import, so its parsed value is set too.
    Both are restored afterwards: a later connection to a remote cluster is unaffected.
    """
    ray_constants = _ray_constants()
    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):  # another Ray: start as is; init_ray warns
        yield
        return
    saved, saved_env = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(SINGLE_MACHINE_ENV)
    ray_constants.ENABLE_RAY_CLUSTER, os.environ[SINGLE_MACHINE_ENV] = False, "0"
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = saved_env
