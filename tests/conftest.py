"""Shared fixtures: environment hygiene and a real S3 endpoint (moto server) on 127.0.0.1.

Tests that need ``../shared/fixtures`` (official outputs used as oracles) find it through
:func:`support.shared_fixtures.shared_fixture`, which skips them with the reason when it is absent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from support.net import free_port

# One math thread per process (torch, numpy, and the CLI / Ray processes tests start, which inherit
# it). The tests' tensors are tiny; with two OpenMP threads on a 2-core machine that is also running
# something else, every parallel region waits for a descheduled thread, and the unit tier measured
# 3.5x slower (2m28s against 42s, the same tests, one busy core). Set OMP_NUM_THREADS to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


def _wait_for(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("moto server did not start listening in time")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A moto S3 server in a subprocess on 127.0.0.1; sets the AWS_* environment for the session.

    Yields the endpoint URL. Subprocesses started by tests (Ray workers, CLI runs) inherit the
    environment and reach the same server.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    try:
        _wait_for(port, proc)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION")


@pytest.fixture
def s3_bucket(moto_s3: str) -> str:
    """A fresh, empty bucket on the moto server; yields its ``s3://`` URI."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_s3).create_bucket(Bucket=name)
    return f"s3://{name}"
