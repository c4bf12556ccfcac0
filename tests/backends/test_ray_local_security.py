"""A local Ray started by init_ray: every listener on loopback (the metrics export port included),
session files in this user's private folder, not in the shared /tmp/ray."""

from __future__ import annotations

import importlib
import os
import stat
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _listening(psutil) -> set[tuple[str, int]]:
    """(address, port) of the listening TCP sockets of this process and everything it spawned."""
    me = psutil.Process()
    pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
    return {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


def test_a_local_ray_listens_on_loopback_only_and_keeps_its_session_private(monkeypatch):
    import ray

    from unsamv2.backends.ray_runtime import init_ray

    psutil = importlib.import_module("psutil")  # Ray's bundled copy, importable once ray is
    ray.shutdown()
    for name in ("RAY_ADDRESS", "RAY_TMPDIR"):
        monkeypatch.delenv(name, raising=False)
    before = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    init_ray(None, include_dashboard=True, num_cpus=1)
    try:
        assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == before  # this process: as it was
        worker_env = ray.get(ray.remote(lambda: os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")).remote())
        assert worker_env == "0"  # Ray's processes (workers, job drivers) join as the same loopback node
        node = ray._private.worker._global_node
        temp = Path(node.get_temp_dir_path())
        assert temp == Path(os.environ.get("TMPDIR") or "/tmp") / f"unsamv2-{os.getuid()}" / "ray"
        assert stat.S_IMODE(temp.parent.stat().st_mode) == 0o700  # Ray makes its own folders 0777
        port = node.metrics_export_port
        deadline, listening = time.monotonic() + 60, set()
        while ("127.0.0.1", port) not in listening and time.monotonic() < deadline:
            time.sleep(1.0)
            listening = _listening(psutil)
        assert ("127.0.0.1", port) in listening, (port, listening)
        assert {ip for ip, _ in listening} <= LOOPBACK, listening  # no 0.0.0.0 / :: / host address
    finally:
        ray.shutdown()
