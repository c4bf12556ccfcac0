"""The local stack end to end, and ``mine-and-train`` through its deployment (the suite's one run of
that path): `stack.py up` → `prefect deployment run mine-and-train/local` (CLI, key from env.sh) →
the flow run mines on the stack's Ray head (token auth on), trains, evaluates and reports; the Ray
dashboard answers on 127.0.0.1 while the run is in flight; the Prefect API refuses requests
without the key; a second run resumes (nothing left to mine or train); every socket the stack
listens on is on loopback; every deployment of prefect.yaml deploys; `stack.py down` leaves none
of the stack's processes behind."""

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


# A tiny mine-and-train workload laid over the deployment's own parameters (prefect.yaml): each
# dict changes only the keys it names (the deployment's mining backend "ray" stays).
TINY = {"training": {"max_steps": 2, "batch_size": 1, "max_masks_per_image": 2, "correction_clicks": 1,
                     "checkpoint_every": 1},
        "evaluation": {"scenes": "scenes:1:1000:64", "policies": ["g=1"], "max_clicks": 2, "max_objects": 2}}


def _images(folder: Path) -> int:
    """Four procedural scenes (all in the train split at val_fraction 0.25) and one broken file."""
    from PIL import Image

    from unsamv2.scenes import iter_scenes

    folder.mkdir(parents=True)
    for i, scene in enumerate(iter_scenes(4, seed=5, size=128)):
        Image.fromarray(scene.image).save(folder / f"scene_{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return 5


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


def _artifact_keys(api: str, auth: str) -> set[str]:
    """Keys of every artifact on the Prefect API (POST /artifacts/filter with basic auth)."""
    request = urllib.request.Request(f"{api}/artifacts/filter", data=b"{}", method="POST", headers={
        "Content-Type": "application/json", "Authorization": "Basic " + base64.b64encode(auth.encode()).decode()})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return {a["key"] for a in json.loads(resp.read()) if a.get("key")}


def _run_deployment(name: str, params: dict, env: dict[str, str], cwd: Path) -> str:
    """`prefect deployment run NAME -p k=v ...`; returns the flow run id."""
    args = [a for k, v in params.items() for a in ("-p", f"{k}={v if isinstance(v, str) else json.dumps(v)}")]
    run = subprocess.run([str(BIN / "prefect"), "deployment", "run", name, *args],
                         env=env, capture_output=True, text=True, timeout=180, cwd=cwd)
    assert run.returncode == 0, run.stdout + run.stderr
    return re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)[1]


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


def test_stack_runs_mine_and_train_through_its_deployment(tmp_path):
    import ray
    from safetensors.torch import load_file

    from unsamv2.data import read_mask_table
    from unsamv2.eval.report import EvalReport

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
        assert stack["deployments"] == ["mine/local", "mine-and-train/local", "pretrain/local",
                                       "nightly-eval/nightly-local"]
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

        images, out = tmp_path / "images", tmp_path / "run"
        expected = _images(images)
        params = {**TINY, "input_uri": str(images), "output_uri": str(out),
                  "mining": {"shard_size": 2, "val_fraction": 0.25, "ray_address": env["RAY_ADDRESS"]}}
        run_id = _run_deployment("mine-and-train/local", params, cli_env, tmp_path)
        state, seen = _wait_for_run(env["PREFECT_API_URL"], run_id, dashboard, token, auth, timeout=900)
        assert state == "COMPLETED", f"flow run ended {state}\n{_log_tails(state_dir)}"
        assert seen, "the run was observed while RUNNING"
        assert all(s == (200, 401, ray.__version__) for s in seen), seen  # answers, and token auth is on
        # mined on the stack's Ray head (the deployment's backend, kept under the run's mining dict):
        # one row per input, masks for every good image
        assert json.loads((out / "mask_table" / "summary.json").read_text())["dashboard_url"]
        rows = read_mask_table(str(out / "mask_table")).to_pylist()
        assert len(rows) == expected
        assert sorted(r["status"] for r in rows) == ["error", "ok", "ok", "ok", "ok"]
        assert all(r["masks"] for r in rows if r["status"] == "ok")
        assert (out / "mask_table" / "stats" / "split.parquet").exists()
        # trained: the shipped base's adapter only, 2 steps, one complete checkpoint
        training = json.loads((out / "train" / "summary.json").read_text())
        assert (training["start_step"], training["steps"], training["world_size"]) == (0, 2, 1)
        checkpoint = out / "train" / "checkpoints" / "step-000002"
        assert training["checkpoint_uri"] == str(checkpoint)
        assert {"adapter.safetensors", "state.pt", "meta.json", "_SUCCESS"} <= set(os.listdir(checkpoint))
        assert "model.safetensors" not in os.listdir(checkpoint)  # adapter mode: SAM-2 stays frozen
        adapter = load_file(checkpoint / "adapter.safetensors")
        assert training["trainable_parameters"] == sum(t.numel() for t in adapter.values()) > 0
        # evaluated and reported
        for name in ("report.html", "report.md", "report.json", "probe.json"):
            assert (out / "report" / name).exists(), name
        report = EvalReport.from_json((out / "report" / "report.json").read_text())
        assert {d.name for d in report.datasets} == {"scenes-objects", "scenes-parts"}
        assert ("scenes-objects", "g=1/1-IoU") in report.metrics()
        assert "mine-and-train" in (out / "summary.md").read_text()
        assert {"mine-and-train-report", "mine-and-train-metrics", "mine-and-train-train-progress"} \
            <= _artifact_keys(env["PREFECT_API_URL"], auth)
        assert _http(f"{env['PREFECT_API_URL']}/flow_runs/{run_id}")[0] == 401  # no key, no API
        listening = _listening(recorded)
        assert ("127.0.0.1", ports["metrics"]) in listening and ("127.0.0.1", ports["prefect"]) in listening
        assert {ip for ip, _ in listening} <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening

        # a second run resumes: nothing left to mine or train, the same checkpoint
        rerun_id = _run_deployment("mine-and-train/local", params, cli_env, tmp_path)
        state, _ = _wait_for_run(env["PREFECT_API_URL"], rerun_id, dashboard, token, auth, timeout=600)
        assert state == "COMPLETED", f"the rerun ended {state}\n{_log_tails(state_dir)}"
        resumed = json.loads((out / "train" / "summary.json").read_text())
        assert resumed["start_step"] == 2 and resumed["checkpoint_uri"] == str(checkpoint)
        assert read_mask_table(str(out / "mask_table")).to_pylist() == rows
        _deploy_everything(cli_env)
    finally:
        down = _stack(state_dir, "down", "--purge", timeout=180)
        assert down.returncode == 0, down.stderr
        stack_module()  # imports scripts/_stack_procs as a side effect
        procs = sys.modules["_stack_procs"]
        leftovers = {r["name"]: procs.session_members(r["pid"]) for r in recorded}
        assert not any(leftovers.values()), f"processes left behind: {leftovers}"
        assert not state_dir.exists()
