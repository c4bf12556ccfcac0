"""scripts/stack.py hardening: the Prefect API needs a generated key (a real server answers 401
without it), secrets and state are private files in a private folder, Ray runs as a loopback-only
node, and a state folder others can write is refused before anything starts."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from opsdefs import stack_module

stack = stack_module()
procs = sys.modules["_stack_procs"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _ports(prefect: int = 1) -> dict[str, int]:
    return {"prefect": prefect, "ray": 2, "dashboard": 3, "metrics": 4}


def test_the_prefect_key_is_generated_once_into_a_private_file(tmp_path):
    auth = stack.ensure_prefect_auth(tmp_path)
    user, key = auth.split(":", 1)
    assert user == "unsamv2" and len(key) >= 40
    assert _mode(tmp_path / stack.PREFECT_AUTH_FILE) == 0o600
    assert stack.ensure_prefect_auth(tmp_path) == auth
    assert stack.auth_env(auth) == {"PREFECT_API_AUTH_STRING": auth}
    assert stack.auth_env(auth, server=True)["PREFECT_SERVER_API_AUTH_STRING"] == auth


def test_state_and_env_files_are_0600_and_the_state_holds_no_key(tmp_path):
    (tmp_path / "env.sh").write_text("old")
    os.chmod(tmp_path / "env.sh", 0o644)
    auth = stack.ensure_prefect_auth(tmp_path)
    env = stack.stack_env(tmp_path, _ports(), stack.ensure_token(tmp_path))
    stack.write_private(tmp_path / "env.sh", stack.export_lines({**env, **stack.auth_env(auth)}))
    stack.save_state(tmp_path, {"env": env, "ports": _ports(), "processes": {}})
    assert _mode(tmp_path / "env.sh") == 0o600 and _mode(tmp_path / "stack.json") == 0o600
    assert auth in (tmp_path / "env.sh").read_text()
    assert auth.split(":")[1] not in (tmp_path / "stack.json").read_text()


@pytest.mark.integration
def test_env_command_exports_the_key_without_printing_it(tmp_path, capsys):
    auth = stack.ensure_prefect_auth(tmp_path)
    env = stack.stack_env(tmp_path, _ports(), stack.ensure_token(tmp_path))
    stack.save_state(tmp_path, {"env": env, "ports": _ports(), "processes": {}})
    assert stack.main(["env", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert auth.split(":")[1] not in out
    shell = subprocess.run(["sh", "-c", out + 'printf %s "$PREFECT_API_AUTH_STRING"'], capture_output=True,
                           text=True, check=True)
    assert shell.stdout == auth


def test_ray_runs_as_a_loopback_only_node():
    env = stack.stack_env(Path("/x"), _ports(), Path("/x/t"))
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"  # node address 127.0.0.1: metrics on loopback
    internal = dict.fromkeys(("client", "agent", "agent_grpc", "runtime_env", "node_manager", "object_manager"), 9)
    argv = stack._ray_argv(stack.parse_args(["up"]), {**_ports(), **internal}, Path("/x/ray"))
    assert argv[argv.index("--node-ip-address") + 1] == "127.0.0.1"
    assert argv[argv.index("--dashboard-host") + 1] == "127.0.0.1"


def test_a_state_folder_others_can_write_is_refused_before_anything_starts(tmp_path, capsys):
    state = tmp_path / "stack"
    state.mkdir()
    os.chmod(state, 0o777)
    assert stack.main(["up", "--state-dir", str(state)]) == 1
    err = capsys.readouterr().err
    assert "the stack's state folder" in err and "can be written by other users" in err and "chmod 700" in err
    assert list(state.iterdir()) == []


def test_a_new_state_folder_is_private(tmp_path):
    state = tmp_path / "new" / "stack"
    stack.ensure_private_dir(state, "the stack's state folder")
    assert _mode(state) == 0o700


def test_a_long_state_path_gets_its_ray_folder_in_a_private_per_user_folder(tmp_path):
    deep = tmp_path / ("x" * 60)
    deep.mkdir()
    old = tmp_path / "old-layout"
    old.mkdir()
    (deep / "ray").symlink_to(old, target_is_directory=True)  # an older stack's /tmp/unsamv2-ray-<hash>
    temp = stack.ray_temp_dir(deep)
    assert temp.parent == Path("/tmp") / f"unsamv2-{os.getuid()}" and _mode(temp.parent) == 0o700
    assert _mode(temp) == 0o700 and (deep / "ray").resolve() == temp.resolve()
    temp.rmdir()


def _request(url: str, auth: str | None = None) -> int:
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    request = urllib.request.Request(url, data=b"{}", headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


_CLIENT = ("from prefect.client.orchestration import get_client\n"
           "with get_client(sync_client=True) as c:\n    print(len(c.read_work_pools()))\n")


@pytest.mark.integration
@pytest.mark.slow
def test_a_real_prefect_server_refuses_requests_without_the_key(tmp_path):
    """The stack's server settings on a real `prefect server start`: no key or a wrong key → 401,
    the stack's client settings → a working Prefect client."""
    state = stack.ensure_private_dir(tmp_path / "stack", "the stack's state folder")
    port, auth = stack._pick_port(), stack.ensure_prefect_auth(state)
    env = stack.stack_env(state, _ports(port), stack.ensure_token(state))
    record = procs.spawn("prefect-server", [str(stack.BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                            "--port", str(port), "--analytics-off"],
                         stack._process_env({**env, **stack.auth_env(auth, server=True)}), state / "server.log", tmp_path)
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/api/health", 240, record=record, what="Prefect server")
        api = env["PREFECT_API_URL"]
        assert _request(f"{api}/work_pools/filter") == 401
        assert _request(f"{api}/work_pools/filter", "unsamv2:wrong") == 401
        assert _request(f"{api}/work_pools/filter", auth) == 200
        client = subprocess.run([sys.executable, "-c", _CLIENT], env=stack._process_env({**env, **stack.auth_env(auth)}),
                                capture_output=True, text=True, timeout=180)
        assert client.returncode == 0 and client.stdout.strip() == "0", client.stderr[-2000:]
        anonymous = subprocess.run([sys.executable, "-c", _CLIENT], env=stack._process_env(env),
                                   capture_output=True, text=True, timeout=180)
        assert anonymous.returncode != 0 and "401" in anonymous.stderr
    finally:
        procs.terminate(record, grace=20)
