"""Process bookkeeping for scripts/stack.py: start detached services, recognise them again by PID
and start time, and stop exactly them (and what they spawned) — never anything else.

Each service starts in its own session (``start_new_session``), so everything it spawns (Ray's
GCS, raylet and workers; the Prefect worker's flow-run processes) shares its session id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


class StackError(RuntimeError):
    """A stack operation failed; the message says what and how to fix it."""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """The kernel start time of ``pid`` (clock ticks since boot), None when unknown or gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def alive(record: dict) -> bool:
    """Whether the recorded process still runs and is the same process (not a reused PID)."""
    pid = record["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    fields = _stat_fields(pid)
    if fields is None:  # no /proc (macOS): trust the PID
        return True
    return fields[0] != "Z" and int(fields[19]) == record.get("start_time")


def session_members(sid: int) -> list[int]:
    """PIDs whose session id is ``sid`` (Linux /proc); empty when /proc is unavailable."""
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[3]) == sid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def spawn(name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> dict:
    """Start ``argv`` detached in a new session with output to ``log_path``; returns its record."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return {"name": name, "pid": proc.pid, "start_time": start_time(proc.pid), "argv": argv,
            "log": str(log_path)}


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    left = pids
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        _reap(left)
        left = [p for p in left if (f := _stat_fields(p)) is not None and f[0] != "Z"]
    return left


def _reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def terminate(record: dict, grace: float) -> int:
    """Stop a recorded service: SIGTERM to it, then to the rest of its session, then SIGKILL.

    Returns how many processes were signalled; 0 when it was already gone.
    """
    if not alive(record):
        return 0
    pid = record["pid"]
    if not Path("/proc").is_dir():  # no session scan: fall back to the process group
        try:
            os.killpg(pid, signal.SIGTERM)
            time.sleep(min(grace, 5.0))
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return 1
    members = session_members(pid)
    _signal_all([pid], signal.SIGTERM)
    _wait_gone([pid], grace)
    rest = session_members(pid)  # what the service left behind (and itself, if still alive)
    _signal_all(rest, signal.SIGTERM)
    left = _wait_gone(rest, 5.0)
    _signal_all(left, signal.SIGKILL)
    _wait_gone(left, 5.0)
    return len(set(members) | set(rest))


def wait_http(url: str, timeout: float, *, record: dict | None = None, headers: dict | None = None,
              what: str = "service") -> None:
    """Poll ``url`` until it answers 200; fail early when the recorded process has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record is not None and not alive(record):
            raise StackError(f"{what} exited during start-up; see {record['log']}")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(1.0)
    where = f"; see {record['log']}" if record else ""
    raise StackError(f"{what} did not answer at {url} within {timeout:.0f} s{where} "
                     "(a busy machine may need --timeout)")
