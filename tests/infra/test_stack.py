"""scripts/stack.py helpers: ports, token, state paths, prefect.yaml lookups, and stopping exactly
the processes it started."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opsdefs import REPO, stack_module

stack = stack_module()
procs = sys.modules["_stack_procs"]


def _args(tmp_path: Path, *extra: str):
    return stack.parse_args(["up", "--state-dir", str(tmp_path), *extra])


def test_ports_default_to_the_usual_ones_and_can_be_set_by_environment(tmp_path, monkeypatch):
    args = _args(tmp_path)
    assert (args.prefect_port, args.ray_port, args.dashboard_port, args.metrics_port) == (4200, 6379, 8265, 8080)
    monkeypatch.setenv("UNSAMV2_STACK_DASHBOARD_PORT", "0")
    ports = stack.resolve_ports(_args(tmp_path, "--prefect-port", "0", "--ray-port", "0", "--metrics-port", "0"))
    assert len(set(ports.values())) == len(ports) and all(p > 0 for p in ports.values())


@pytest.mark.integration
def test_a_busy_port_is_refused_with_the_way_out(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(stack.StackError, match=f"port {port} \\(prefect\\).*UNSAMV2_STACK_PREFECT_PORT"):
            stack.resolve_ports(_args(tmp_path, "--prefect-port", str(port), "--ray-port", "0",
                                      "--dashboard-port", "0", "--metrics-port", "0"))


def test_token_is_private_and_stable(tmp_path):
    path = stack.ensure_token(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text()
    assert len(token) == 64 and stack.ensure_token(tmp_path).read_text() == token


def test_ray_temp_dir_stays_short_enough_for_unix_sockets(tmp_path):
    short_state = Path("/tmp") / f"us-{os.getpid()}"
    assert stack.ray_temp_dir(short_state) == short_state / "ray"
    deep = tmp_path / ("x" * 60)
    deep.mkdir()
    temp = stack.ray_temp_dir(deep)
    assert len(str(temp)) <= 40 and (deep / "ray").resolve() == temp.resolve()
    assert stack.ray_temp_dir(deep) == temp  # the same folder again, not a new one
    temp.rmdir()


def test_stack_environment_keeps_token_auth_on_and_telemetry_off(tmp_path):
    env = stack.stack_env(tmp_path, {"prefect": 1, "ray": 2, "dashboard": 3, "metrics": 4}, tmp_path / "t")
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / "t")
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:1/api" and env["RAY_ADDRESS"] == "127.0.0.1:2"
    assert env["PREFECT_HOME"].startswith(str(tmp_path))


@pytest.mark.integration
def test_env_file_lines_survive_a_shell(tmp_path):
    env = {"PREFECT_HOME": str(tmp_path / "a b"), "RAY_ADDRESS": "127.0.0.1:1"}
    script = stack.export_lines(env) + 'printf "%s|%s" "$PREFECT_HOME" "$RAY_ADDRESS"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out == f"{tmp_path / 'a b'}|127.0.0.1:1"


def test_local_deployments_come_from_prefect_yaml():
    pool, names = stack.local_deployments()
    assert pool == "unsamv2-local" and "mine/local" in names
    assert "mine/cluster" not in names and "mine/vm" not in names
    assert stack.flow_name_of("flows/demo.py:demo") == "demo"
    with pytest.raises(stack.StackError, match="no function"):
        stack.flow_name_of("flows/mine.py:nope")


def _session_pids(sid: int) -> list[int]:
    return procs.session_members(sid)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="session bookkeeping uses /proc")
@pytest.mark.integration
def test_terminate_stops_the_service_and_what_it_spawned_only(tmp_path):
    bystander = subprocess.Popen(["sleep", "60"])
    record = procs.spawn("svc", ["sh", "-c", "sleep 60 & sleep 60 & wait"], dict(os.environ),
                         tmp_path / "svc.log", tmp_path)
    try:
        deadline = time.monotonic() + 10
        while len(_session_pids(record["pid"])) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_session_pids(record["pid"])) == 3 and procs.alive(record)
        assert procs.terminate(record, grace=5) == 3
        assert _session_pids(record["pid"]) == [] and not procs.alive(record)
        assert bystander.poll() is None, "a process outside the session is untouched"
        assert procs.terminate(record, grace=5) == 0
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="start times come from /proc")
def test_a_reused_pid_is_not_the_recorded_process():
    me = {"pid": os.getpid(), "start_time": procs.start_time(os.getpid())}
    assert procs.alive(me)
    assert not procs.alive({**me, "start_time": me["start_time"] + 1})
    assert procs.terminate({**me, "start_time": me["start_time"] + 1}, grace=1) == 0


def test_down_without_a_stack_is_a_no_op(tmp_path, capsys):
    assert stack.main(["down", "--state-dir", str(tmp_path)]) == 0
    assert "nothing running" in capsys.readouterr().out
    assert stack.main(["status", "--state-dir", str(tmp_path)]) == 1


def test_makefile_targets_call_the_script():
    text = (REPO / "Makefile").read_text()
    assert "\nserve: install\n\t$(PY) scripts/stack.py up" in text
    assert "\nstop:\n\t$(PY) scripts/stack.py down" in text
