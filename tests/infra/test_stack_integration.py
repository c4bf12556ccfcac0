"""The local stack end to end: `stack.py up` → `prefect deployment run mine/local` (CLI) → the flow
run completes on the stack's Ray head (token auth on) → mask table; the Ray dashboard answers on
127.0.0.1 while the run is in flight; the Prefect API refuses requests without the key from env.sh;
every socket the stack listens on is on loopback; `stack.py down` leaves none of the stack's
processes behind."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from opsdefs import REPO, stack_module

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _images(folder: Path) -> int:
    from PIL import Image

    from unsamv2.scenes import iter_scenes

    folder.mkdir(parents=True)
    for i, scene in enumerate(iter_scenes(3, seed=11, size=128)):
        Image.fromarray(scene.image).save(folder / f"scene_{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return 4


def _http(url: str, token: str | None = None, *, auth: str | None = None) -> tuple[int, bytes]:
    """GET ``url`` with a Ray bearer ``token`` or Prefect basic ``auth`` (or neither)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if auth:
        headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _flow_run_state(api: str, run_id: str, auth: str) -> str:
    status, body = _http(f"{api}/flow_runs/{run_id}", auth=auth)
    assert status == 200, status
    return json.loads(body)["state"]["type"]


def _log_tails(state_dir: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted((state_dir / "logs").glob("*.log")))


def _stack(state_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "stack.py"), *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _wait_for_run(api: str, run_id: str, dashboard: str, token: str, auth: str, timeout: float) -> tuple[str, list]:
    """Poll the run; while it runs, ask the dashboard (with and without the token)."""
    seen_while_running, state = [], "SCHEDULED"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _flow_run_state(api, run_id, auth)
        if state == "RUNNING":
            with_token, body = _http(f"{dashboard}/api/version", token)
            without, _ = _http(f"{dashboard}/api/version")
            seen_while_running.append((with_token, without, json.loads(body or b"{}").get("ray_version")))
        if state in TERMINAL:
            break
        time.sleep(1.0)
    return state, seen_while_running


def _sourced(env_sh: Path) -> dict[str, str]:
    """What `source <state>/env.sh` gives another shell."""
    out = subprocess.run(["sh", "-c", f'. "{env_sh}" && env -0'], capture_output=True, check=True, env={}).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def _listening(recorded: list[dict]) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket of the stack's processes (their sessions)."""
    import importlib

    import ray  # noqa: F401

    psutil = importlib.import_module("psutil")  # Ray's bundled copy, importable once ray is

    stack_module()  # imports scripts/_stack_procs as a side effect
    procs = sys.modules["_stack_procs"]
    pids = {pid for r in recorded for pid in procs.session_members(r["pid"])}
    return {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


def _deploy_everything(env: dict[str, str]) -> None:
    """Every deployment of prefect.yaml deploys as written once its work pools exist."""
    from opsdefs import INFRA

    for pool, extra in (("unsamv2-vm", []), ("unsamv2-k8s", ["--base-job-template",
                                                             str(INFRA / "prefect" / "k8s-base-job-template.json")])):
        created = subprocess.run([str(BIN / "prefect"), "work-pool", "create", pool, "--type",
                                  "process" if pool == "unsamv2-vm" else "kubernetes", *extra],
                                 env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
        assert created.returncode == 0, created.stdout + created.stderr
    deployed = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env=env,
                              capture_output=True, text=True, timeout=300, cwd=REPO)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    for name in ("mine/local", "mine/cluster", "mine/vm"):
        status, body = _http(f"{env['PREFECT_API_URL']}/deployments/name/{name}", auth=env["PREFECT_API_AUTH_STRING"])
        assert status == 200, name
        assert json.loads(body)["pull_steps"], f"{name} has pull steps"


def test_stack_serves_a_mine_deployment_on_ray(tmp_path):
    import ray

    from unsamv2.data import read_mask_table

    state_dir = tmp_path / "stack"
    recorded: list[dict] = []
    try:
        up = _stack(state_dir, "up", "--prefect-port", "0", "--ray-port", "0", "--dashboard-port", "0",
                    "--metrics-port", "0", "--num-cpus", "2", "--timeout", "150", timeout=420)
        if (state_dir / "stack.json").exists():
            recorded = list(json.loads((state_dir / "stack.json").read_text())["processes"].values())
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{_log_tails(state_dir)}"
        stack = json.loads((state_dir / "stack.json").read_text())
        env, ports = stack["env"], stack["ports"]
        dashboard = f"http://127.0.0.1:{ports['dashboard']}"
        assert f"Prefect UI       http://127.0.0.1:{ports['prefect']}" in up.stdout
        assert f"Ray dashboard    {dashboard}" in up.stdout and env["RAY_ADDRESS"] in up.stdout
        assert stack["deployments"] == ["mine/local", "mine-and-train/local", "nightly-eval/nightly-local"]
        token = Path(env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
        assert token not in up.stdout + up.stderr, "the token is never printed"
        cli_env = {**os.environ, **_sourced(state_dir / "env.sh")}  # what another shell gets
        auth = cli_env["PREFECT_API_AUTH_STRING"]
        assert auth.split(":")[1] not in up.stdout + up.stderr, "the Prefect key is never printed"
        assert stat.S_IMODE((state_dir / "env.sh").stat().st_mode) == 0o600
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
        again = _stack(state_dir, "up", timeout=120)  # idempotent: reports the running stack
        assert again.returncode == 0 and again.stdout == up.stdout
        assert json.loads((state_dir / "stack.json").read_text())["processes"] == stack["processes"]

        images, table = tmp_path / "images", tmp_path / "table"
        expected = _images(images)
        run = subprocess.run(
            [str(BIN / "prefect"), "deployment", "run", "mine/local", "-p", f"input_uri={images}",
             "-p", f"output_uri={table}", "-p", "shard_size=2", "-p", "backend=ray", "-p", "actors=1",
             "-p", f"ray_address={env['RAY_ADDRESS']}", "-p", "statistics=false"],
            env=cli_env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)[1]

        state, seen = _wait_for_run(env["PREFECT_API_URL"], run_id, dashboard, token, auth, timeout=300)
        assert state == "COMPLETED", f"flow run ended {state}\n{_log_tails(state_dir)}"
        assert seen, "the run was observed while RUNNING"
        assert all(s == (200, 401, ray.__version__) for s in seen), seen  # answers, and token auth is on
        rows = read_mask_table(str(table)).to_pylist()
        assert len(rows) == expected
        assert sorted(r["status"] for r in rows) == ["error", "ok", "ok", "ok"]
        assert all(r["masks"] for r in rows if r["status"] == "ok")
        assert _http(f"{env['PREFECT_API_URL']}/flow_runs/{run_id}")[0] == 401  # no key, no API
        listening = _listening(recorded)
        assert ("127.0.0.1", ports["metrics"]) in listening and ("127.0.0.1", ports["prefect"]) in listening
        assert {ip for ip, _ in listening} <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening
        _deploy_everything(cli_env)
    finally:
        down = _stack(state_dir, "down", "--purge", timeout=180)
        assert down.returncode == 0, down.stderr
        stack_module()  # imports scripts/_stack_procs as a side effect
        procs = sys.modules["_stack_procs"]
        leftovers = {r["name"]: procs.session_members(r["pid"]) for r in recorded}
        assert not any(leftovers.values()), f"processes left behind: {leftovers}"
        assert not state_dir.exists()
