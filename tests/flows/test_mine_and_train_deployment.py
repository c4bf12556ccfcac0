"""`mine-and-train` through its deployment: the local stack (Prefect server, process worker, Ray head;
scripts/stack.py deploys prefect.yaml) → `prefect deployment run mine-and-train/local` with a tiny
workload → the run completes with a checkpoint and a report written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = {"shard_size": 2, "val_fraction": 0.25, "steps": 2, "train_batch_size": 1, "max_masks_per_image": 2,
        "correction_clicks": 1, "checkpoint_every": 1, "eval_scenes": "scenes:1:1000:64",
        "eval_policies": ["g=1"], "eval_max_clicks": 2, "eval_max_objects": 2}


def _stack(state_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "stack.py"), *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _state(api: str, run_id: str, auth: str) -> str:
    """The flow run's state type, asked with the stack's Prefect basic-auth key."""
    import base64

    request = urllib.request.Request(f"{api}/flow_runs/{run_id}",
                                     headers={"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())["state"]["type"]


def _sourced(env_sh: Path) -> dict[str, str]:
    """What `source <state>/env.sh` gives another shell (the Prefect API key lives only there)."""
    out = subprocess.run(["sh", "-c", f'. "{env_sh}" && env -0'], capture_output=True, check=True, env={}).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def _logs(state_dir: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted((state_dir / "logs").glob("*.log")))


def test_mine_and_train_deployment_runs_on_the_local_stack(tmp_path):
    from PIL import Image

    from unsamv2.scenes import iter_scenes

    images, out, state_dir = tmp_path / "images", tmp_path / "run", tmp_path / "stack"
    images.mkdir()
    for i, scene in enumerate(iter_scenes(4, seed=5, size=128)):
        Image.fromarray(scene.image).save(images / f"scene_{i}.png")
    try:
        up = _stack(state_dir, "up", "--prefect-port", "0", "--ray-port", "0", "--dashboard-port", "0",
                    "--metrics-port", "0", "--num-cpus", "2", "--timeout", "150", timeout=420)
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{_logs(state_dir)}"
        stack = json.loads((state_dir / "stack.json").read_text())
        assert "mine-and-train/local" in stack["deployments"]
        env = {**os.environ, **stack["env"], **_sourced(state_dir / "env.sh")}
        params = {**TINY, "input_uri": str(images), "output_uri": str(out), "ray_address": env["RAY_ADDRESS"]}
        args = [a for k, v in params.items() for a in ("-p", f"{k}={json.dumps(v) if not isinstance(v, str) else v}")]
        run = subprocess.run([str(BIN / "prefect"), "deployment", "run", "mine-and-train/local", *args],
                             env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)[1]
        deadline, state = time.monotonic() + 900, "SCHEDULED"
        while time.monotonic() < deadline and state not in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            time.sleep(2.0)
            state = _state(env["PREFECT_API_URL"], run_id, env["PREFECT_API_AUTH_STRING"])
        assert state == "COMPLETED", f"flow run ended {state}\n{_logs(state_dir)}"
        checkpoint = out / "train" / "checkpoints" / "step-000002"
        assert (checkpoint / "_SUCCESS").exists() and (checkpoint / "adapter.safetensors").exists()
        assert (out / "report" / "report.html").exists() and (out / "report" / "report.json").exists()
        assert (out / "summary.md").exists()
    finally:
        down = _stack(state_dir, "down", "--purge", timeout=180)
        assert down.returncode == 0, down.stderr
