"""Ray Jobs: run a command (``unsamv2 train --backend ray ...``) on an existing cluster, once.

A job is submitted under a *stable* submission id derived from what identifies the work (for a
Prefect task: the flow run id and the config hash). Submitting again with the same id — a Prefect
retry, a restarted worker — attaches to the job that is pending, running or finished instead of
starting a second one; only when the last attempt failed or was stopped is a new attempt submitted,
as ``<id>-retry-<k>`` (training resumes from its checkpoints). :func:`follow_job` polls the status
and forwards every new log line to a callback (the flow's logger).

The address is the cluster's dashboard / job server URL, e.g. ``http://ray-head:8265``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_RETRY = re.compile(r"-retry-(\d+)$")
ACTIVE = ("PENDING", "RUNNING", "SUCCEEDED")
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def stable_submission_id(prefix: str, *keys: str) -> str:
    """``<prefix>-<16 hex digits of sha256(keys)>``: the same keys give the same id."""
    digest = hashlib.sha256("\x1f".join(keys).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"


def _attempt(submission_id: str) -> int:
    match = _RETRY.search(submission_id)
    return int(match.group(1)) if match else 0


def _client(address: str) -> Any:
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address)


@dataclass(frozen=True)
class Submission:
    """The job a call ended up with: its ``submission_id``, and whether it ``attached`` to a job
    that already existed (True) or submitted a new one (False)."""

    submission_id: str
    attached: bool


def submit_or_attach(address: str, base_id: str, entrypoint: str, *, runtime_env: dict[str, Any] | None = None,
                     metadata: dict[str, str] | None = None) -> Submission:
    """Submit ``entrypoint`` as job ``base_id`` unless an attempt of it is pending, running or
    succeeded (then attach to it); after a failed / stopped attempt, submit the next one."""
    client = _client(address)
    attempts = {j.submission_id: str(getattr(j.status, "value", j.status)) for j in client.list_jobs()
                if j.submission_id and (j.submission_id == base_id or j.submission_id.startswith(base_id + "-retry-"))}
    if attempts:
        last = max(attempts, key=_attempt)
        if attempts[last] in ACTIVE:
            log.info("attaching to Ray job %s (%s)", last, attempts[last])
            return Submission(last, True)
        new_id = f"{base_id}-retry-{_attempt(last) + 1}"
    else:
        new_id = base_id
    try:
        client.submit_job(entrypoint=entrypoint, submission_id=new_id, runtime_env=runtime_env,
                          metadata=metadata or {})
    except RuntimeError as exc:  # another caller submitted the same id a moment ago
        if "already exists" not in str(exc):
            raise
        return Submission(new_id, True)
    log.info("submitted Ray job %s", new_id)
    return Submission(new_id, False)


def follow_job(address: str, submission_id: str, on_line: Callable[[str], None], *, poll_seconds: float = 5.0,
               timeout_seconds: float | None = None) -> str:
    """Forward the job's log lines to ``on_line`` until it ends; returns its final status
    (SUCCEEDED, FAILED or STOPPED). A timeout raises TimeoutError and leaves the job running."""
    client = _client(address)
    sent, deadline = 0, None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        status = str(getattr(client.get_job_status(submission_id), "value", ""))
        logs = client.get_job_logs(submission_id)
        complete = status in TERMINAL
        end = len(logs) if complete else logs.rfind("\n") + 1  # hold back a partial last line
        for line in logs[sent:end].splitlines():
            on_line(line)
        sent = max(sent, end)
        if complete:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Ray job {submission_id} still {status} after {timeout_seconds} s")
        time.sleep(poll_seconds)


def job_message(address: str, submission_id: str) -> str:
    """The job's status message (why it failed, when it did)."""
    return str(_client(address).get_job_info(submission_id).message or "")


def train_entrypoint(config_uri: str, *, workers: int, cpus_per_worker: float = 1.0,
                     gpus_per_worker: float | None = None, run_name: str | None = None,
                     extra: Sequence[str] = ()) -> str:
    """The shell command of a training job: ``python -m unsamv2 train --config-file ... --backend ray
    --resume`` (the job's driver joins the cluster it runs on; ``python`` is the cluster's)."""
    args = ["python", "-m", "unsamv2", "train", "--config-file", config_uri, "--backend", "ray", "--ray-address", "auto",
            "--resume", "--workers", str(int(workers)), "--cpus-per-worker", str(float(cpus_per_worker))]
    if gpus_per_worker is not None:
        args += ["--gpus-per-worker", str(float(gpus_per_worker))]
    if run_name:
        args += ["--run-name", run_name]
    return shlex.join([*args, *extra])


def job_runtime_env() -> dict[str, Any]:
    """Non-secret settings the job needs from here (S3 endpoint, unsamv2 switches); never credentials."""
    from unsamv2.backends.ray_runtime import _forwarded_env

    return {"env_vars": _forwarded_env()}
