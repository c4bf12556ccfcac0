"""The local stack: a Prefect server, a process work pool and worker, and a Ray head, on 127.0.0.1.

    python scripts/stack.py up       # make serve: start everything, deploy prefect.yaml, print URLs
    python scripts/stack.py status   # what runs, where
    python scripts/stack.py env      # `export ...` lines for another shell (also in <state>/env.sh)
    python scripts/stack.py down     # make stop: stop only what `up` started (recorded PIDs)

State (Prefect database, logs, Ray session files, the Ray token, the Prefect API key, PID records)
lives in the state folder, ``.local/stack`` by default (``--state-dir`` / ``UNSAMV2_STACK_DIR``),
created mode 0700; an existing one is used only if it is a folder of this user that no one else can
write. Ports default to Prefect 4200, Ray GCS 6379, dashboard 8265, metrics 8080; each can be set
by flag or environment (``UNSAMV2_STACK_PREFECT_PORT``, ``..._RAY_PORT``, ``..._DASHBOARD_PORT``,
``..._METRICS_PORT``); 0 picks a free port.

Nothing answers unauthenticated: the Prefect API needs HTTP basic auth with a generated key
(``PREFECT_API_AUTH_STRING`` in ``<state>/env.sh``, mode 0600; the server gets it as
``PREFECT_SERVER_API_AUTH_STRING``), Ray runs with token auth (the token is generated into the
state folder), and the Ray head is a single-machine node on 127.0.0.1, so its metrics export port
and agents listen on loopback only. Nothing is sent over the network: Prefect analytics and Ray
usage stats are off.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack_procs import StackError, alive, spawn, terminate, wait_http  # noqa: E402

from unsamv2.backends.private_dirs import ensure_private_dir, private_runtime_dir  # noqa: E402
from unsamv2.errors import StorageError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCAL_POOL_KEY = "local"  # definitions.work_pools.<key> in prefect.yaml
GRAFANA_DASHBOARD = REPO / "infra" / "monitoring" / "grafana" / "unsamv2_mining_dashboard.json"
PORTS = {"prefect": 4200, "ray": 6379, "dashboard": 8265, "metrics": 8080}
STOP_ORDER = ("worker", "ray-head", "prefect-server")
PREFECT_AUTH_FILE = "prefect_api_auth"  # user:key for the Prefect API's basic auth (0600)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "status", "env"))
    parser.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get("UNSAMV2_STACK_DIR", REPO / ".local" / "stack")))
    for name, default in PORTS.items():
        parser.add_argument(f"--{name}-port", type=int,
                            default=int(os.environ.get(f"UNSAMV2_STACK_{name.upper()}_PORT", default)))
    parser.add_argument("--num-cpus", type=int, default=int(os.environ.get("UNSAMV2_STACK_NUM_CPUS", 0)) or None,
                        help="CPUs the Ray head offers (default: all)")
    parser.add_argument("--object-store-mb", type=int, default=int(os.environ.get("UNSAMV2_STACK_OBJECT_STORE_MB", 512)))
    parser.add_argument("--gpu-slots", type=int, default=1, help="limit of the ray-gpu global concurrency limit")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("UNSAMV2_STACK_TIMEOUT", 240)),
                        help="seconds to wait for each service")
    parser.add_argument("--no-deploy", action="store_true", help="start the services, skip `prefect deploy`")
    parser.add_argument("--purge", action="store_true", help="down: also delete the state folder")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- state and environment


def _state_file(state_dir: Path) -> Path:
    return state_dir / "stack.json"


def load_state(state_dir: Path) -> dict | None:
    path = _state_file(state_dir)
    return json.loads(path.read_text()) if path.exists() else None


def save_state(state_dir: Path, state: dict) -> None:
    tmp = _state_file(state_dir).with_suffix(".tmp")
    write_private(tmp, json.dumps(state, indent=2))
    tmp.replace(_state_file(state_dir))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (mode 0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def resolve_ports(args: argparse.Namespace) -> dict[str, int]:
    """The configured ports (0 → a free one) plus free ports for Ray's internal listeners."""
    ports = {}
    for name in PORTS:
        port = getattr(args, f"{name}_port") or _pick_port()
        if not _port_free(port):
            raise StackError(f"port {port} ({name}) on 127.0.0.1 is in use; pass --{name}-port or set "
                             f"UNSAMV2_STACK_{name.upper()}_PORT (0 picks a free port).")
        ports[name] = port
    for name in ("client", "agent", "agent_grpc", "runtime_env", "node_manager", "object_manager"):
        ports[name] = _pick_port()
    return ports


def ray_temp_dir(state_dir: Path) -> Path:
    """Ray's session root. Unix socket paths are limited to 107 bytes, so a long state path gets a
    short folder in this user's private ``/tmp/unsamv2-<uid>`` (0700, checked before reuse), linked
    from ``<state>/ray``. Ray makes its session folders 0777; the private parent keeps others out."""
    wanted = state_dir / "ray"
    if len(str(wanted)) <= 40:
        return wanted
    digest = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:10]
    short = ensure_private_dir(private_runtime_dir(Path("/tmp")) / f"ray-{digest}", "the stack's Ray folder")
    if wanted.is_symlink() and Path(os.readlink(wanted)) != short:
        wanted.unlink()  # left by an older layout: point it at the private folder
    if not wanted.is_symlink():
        wanted.symlink_to(short, target_is_directory=True)
    return short


def _ensure_secret(path: Path, make: str) -> Path:
    """A secret file (0600), written once with ``make``; its value is never printed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return path
    with os.fdopen(fd, "w") as f:
        f.write(make)
    return path


def ensure_token(state_dir: Path) -> Path:
    """The Ray auth token file (0600), generated once; its value is never printed."""
    return _ensure_secret(state_dir / "ray_auth_token", secrets.token_hex(32))


def ensure_prefect_auth(state_dir: Path) -> str:
    """The Prefect API's basic-auth string ``unsamv2:<key>`` (file 0600, generated once)."""
    path = _ensure_secret(state_dir / PREFECT_AUTH_FILE, f"unsamv2:{secrets.token_urlsafe(32)}")
    return path.read_text().strip()


def auth_env(auth: str, *, server: bool = False) -> dict[str, str]:
    """The Prefect auth settings: clients send ``auth`` (basic auth); the server also checks it."""
    return {"PREFECT_API_AUTH_STRING": auth, **({"PREFECT_SERVER_API_AUTH_STRING": auth} if server else {})}


def stack_env(state_dir: Path, ports: dict[str, int], token: Path) -> dict[str, str]:
    """What every stack process (and a user's shell, via env.sh) needs to talk to the stack."""
    return {
        "PREFECT_HOME": str(state_dir / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{ports['prefect']}/api",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(ports["prefect"]),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_ADDRESS": f"127.0.0.1:{ports['ray']}",
        # Ray's single-machine mode: the head (and every driver that joins it) takes 127.0.0.1 as its
        # node address, so Ray binds the metrics export port and its agents to loopback only
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }


def export_lines(env: dict[str, str]) -> str:
    """``export K=V`` lines a POSIX shell can source (values quoted)."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def _process_env(env: dict[str, str]) -> dict[str, str]:
    secret_keys = ("RAY_AUTH_TOKEN", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING")
    merged = {k: v for k, v in os.environ.items() if k not in secret_keys}
    return {**merged, **env}


# ---------------------------------------------------------------- prefect.yaml


def local_deployments(prefect_yaml: Path = REPO / "prefect.yaml") -> tuple[str, list[str]]:
    """The local work pool's name and every ``<flow>/<deployment>`` on it, from prefect.yaml."""
    import yaml

    config = yaml.safe_load(prefect_yaml.read_text())
    pool = config["definitions"]["work_pools"][LOCAL_POOL_KEY]["name"]
    names = [f"{flow_name_of(d['entrypoint'])}/{d['name']}" for d in config.get("deployments", [])
             if (d.get("work_pool") or {}).get("name") == pool]
    return pool, names


def flow_name_of(entrypoint: str) -> str:
    """The Prefect flow name behind ``path.py:function`` (``@flow(name=...)`` or the function name)."""
    import ast

    path, func = entrypoint.rsplit(":", 1)
    tree = ast.parse((REPO / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == func:
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call):
                    for kw in deco.keywords:
                        if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                            return str(kw.value.value)
            return func.replace("_", "-")
    raise StackError(f"entrypoint {entrypoint} names no function {func!r}; fix prefect.yaml.")


# ---------------------------------------------------------------- services


def _ray_argv(args: argparse.Namespace, ports: dict[str, int], temp: Path) -> list[str]:
    argv = [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
            "--port", str(ports["ray"]), "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(ports["dashboard"]), "--metrics-export-port", str(ports["metrics"]),
            "--ray-client-server-port", str(ports["client"]),
            "--dashboard-agent-listen-port", str(ports["agent"]),
            "--dashboard-agent-grpc-port", str(ports["agent_grpc"]),
            "--runtime-env-agent-port", str(ports["runtime_env"]),
            "--node-manager-port", str(ports["node_manager"]),
            "--object-manager-port", str(ports["object_manager"]),
            "--object-store-memory", str(args.object_store_mb * 2**20),
            "--temp-dir", str(temp), "--disable-usage-stats"]
    return argv + (["--num-cpus", str(args.num_cpus)] if args.num_cpus else [])


def _start(state: dict, state_dir: Path, name: str, argv: list[str], env: dict[str, str]) -> dict:
    record = spawn(name, argv, _process_env(env), state_dir / "logs" / f"{name}.log", REPO)
    state["processes"][name] = record
    save_state(state_dir, state)  # recorded at once, so `down` can stop a half-started stack
    return record


def configure_prefect(env: dict[str, str], pool: str, gpu_slots: int) -> None:
    """Create the process work pool and the ray-gpu global concurrency limit (idempotent)."""
    os.environ.update(env)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    sys.path.insert(0, str(REPO))
    from tasks.limits import DEFAULT_RAY_GPU_LIMIT

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        except ObjectAlreadyExists:
            pass
        try:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=DEFAULT_RAY_GPU_LIMIT, limit=gpu_slots))
        except ObjectAlreadyExists:
            pass


def deploy(env: dict[str, str], names: list[str], log: Path) -> None:
    """``prefect --no-prompt deploy --name <flow/deployment> ...`` from the repository root."""
    if not names:
        return
    argv = [str(BIN / "prefect"), "--no-prompt", "deploy"] + [a for n in names for a in ("--name", n)]
    with open(log, "ab") as out:
        rc = subprocess.run(argv, cwd=REPO, env=_process_env(env), stdout=out, stderr=subprocess.STDOUT,
                            timeout=600).returncode
    if rc != 0:
        raise StackError(f"prefect deploy {' '.join(names)} failed (exit {rc}); see {log}")


def install_grafana_dashboard(temp: Path) -> Path | None:
    """Copy the unsamv2 dashboard next to the ones Ray generates for this session."""
    target = temp / "session_latest" / "metrics" / "grafana" / "dashboards"
    if not target.is_dir() or not GRAFANA_DASHBOARD.exists():
        return None
    shutil.copy(GRAFANA_DASHBOARD, target / GRAFANA_DASHBOARD.name)
    return target


def start_services(args: argparse.Namespace, state: dict, env: dict[str, str], temp: Path, auth: str) -> None:
    """Prefect server (API auth on) and Ray head, then the work pool, limit, worker and deployments."""
    ports, d = state["ports"], args.state_dir
    head_env = {**env, "RAY_PROMETHEUS_HOST": os.environ.get("RAY_PROMETHEUS_HOST", "http://127.0.0.1:9090"),
                "RAY_GRAFANA_HOST": os.environ.get("RAY_GRAFANA_HOST", "http://127.0.0.1:3000"),
                # no Serve replicas to migrate here: a short drain keeps `make stop` quick
                "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": os.environ.get("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "5")}
    server = _start(state, d, "prefect-server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                                  "--port", str(ports["prefect"]), "--analytics-off"],
                    {**env, **auth_env(auth, server=True)})
    head = _start(state, d, "ray-head", _ray_argv(args, ports, temp), head_env)
    wait_http(f"http://127.0.0.1:{ports['prefect']}/api/health", args.timeout, record=server, what="Prefect server")
    token = Path(env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    wait_http(f"http://127.0.0.1:{ports['dashboard']}/api/version", args.timeout, record=head,
              headers={"Authorization": f"Bearer {token}"}, what="Ray head")
    install_grafana_dashboard(temp)
    pool, names = local_deployments()
    client_env = {**env, **auth_env(auth)}
    configure_prefect(client_env, pool, args.gpu_slots)
    _start(state, d, "worker", [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process",
                                "--name", f"{pool}-{ports['prefect']}", "--install-policy", "never"],
           {**client_env, "PREFECT_WORKER_QUERY_SECONDS": "5"})
    if not args.no_deploy:
        deploy(client_env, names, d / "logs" / "deploy.log")
    state["deployments"] = [] if args.no_deploy else names
    save_state(d, state)


def up(args: argparse.Namespace) -> int:
    """Start the stack (or report the running one); state in a private folder (see module doc)."""
    d = args.state_dir = args.state_dir.resolve()
    ensure_private_dir(d, "the stack's state folder")
    previous = load_state(d)
    if previous:
        running = [n for n, r in previous["processes"].items() if alive(r)]
        if len(running) == len(previous["processes"]) and running:
            print(summary(previous, d))
            return 0
        if running:
            raise StackError(f"the stack in {d} is partly running ({', '.join(running)}); run `make stop` first.")
    ensure_private_dir(d / "logs", "the stack's log folder")
    ports = resolve_ports(args)
    temp = ray_temp_dir(d)
    env, auth = stack_env(d, ports, ensure_token(d)), ensure_prefect_auth(d)
    state = {"version": 1, "ports": ports, "ray_temp_dir": str(temp), "env": env, "processes": {}}
    save_state(d, state)  # never holds the Prefect key: that lives in env.sh and prefect_api_auth (0600)
    write_private(d / "env.sh", export_lines({**env, **auth_env(auth)}))
    try:
        start_services(args, state, env, temp, auth)
    except BaseException:
        stop(d)
        raise
    print(summary(state, d))
    return 0


def stop(state_dir: Path) -> list[str]:
    """Stop the recorded services (worker, Ray head, Prefect server); returns what was stopped."""
    state = load_state(state_dir)
    if not state:
        return []
    stopped = []
    for name in STOP_ORDER:
        record = state["processes"].get(name)
        if record and terminate(record, grace=45.0 if name == "ray-head" else 20.0):
            stopped.append(name)
    _state_file(state_dir).unlink(missing_ok=True)
    return stopped


def down(args: argparse.Namespace) -> int:
    d = args.state_dir.resolve()
    stopped = stop(d)
    print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing running from {d}")
    if args.purge:
        link = d / "ray"
        if link.is_symlink():
            shutil.rmtree(link.resolve(), ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)
        print(f"removed {d}")
    return 0


def summary(state: dict, state_dir: Path) -> str:
    p, env, temp = state["ports"], state["env"], Path(state["ray_temp_dir"])
    rel = os.path.relpath(state_dir) if state_dir.is_relative_to(Path.cwd()) else str(state_dir)
    deployments = state.get("deployments") or []
    example = deployments[0] if deployments else "mine/local"
    lines = [
        "unsamv2 local stack is up",
        f"  Prefect UI       http://127.0.0.1:{p['prefect']}",
        f"  Prefect API      {env['PREFECT_API_URL']}  (basic auth: PREFECT_API_AUTH_STRING in env.sh)",
        f"  Ray dashboard    http://127.0.0.1:{p['dashboard']}  (token: {env['RAY_AUTH_TOKEN_PATH']})",
        f"  RAY_ADDRESS      {env['RAY_ADDRESS']}",
        f"  Ray metrics      http://127.0.0.1:{p['metrics']}/metrics",
        f"  deployments      {', '.join(deployments) or '(none)'}",
        f"  logs             {state_dir / 'logs'}",
        "",
        "From another shell:",
        f"  source {rel}/env.sh        # the UI asks for its PREFECT_API_AUTH_STRING once",
        f"  prefect deployment run {example} -p input_uri=$PWD/runs/demo/data/images "
        "-p output_uri=$PWD/runs/stack/mask_table",
        "Metrics (optional, if installed):",
        f"  prometheus --config.file {temp}/session_latest/metrics/prometheus/prometheus.yml",
        f"  grafana server --config {temp}/session_latest/metrics/grafana/grafana.ini --homepath <grafana share dir>",
        "Stop: make stop",
    ]
    return "\n".join(lines)


def status(args: argparse.Namespace) -> int:
    d = args.state_dir.resolve()
    state = load_state(d)
    if not state:
        print(f"nothing running from {d}")
        return 1
    for name, record in state["processes"].items():
        print(f"  {name:15s} pid {record['pid']:<8d} {'running' if alive(record) else 'NOT RUNNING'}")
    print(summary(state, d))
    return 0 if all(alive(r) for r in state["processes"].values()) else 1


def env_lines(args: argparse.Namespace) -> int:
    d = args.state_dir.resolve()
    state = load_state(d)
    if not state:
        print("# the stack is not running; start it with `make serve`", file=sys.stderr)
        return 1
    print(export_lines(state["env"]), end="")  # the key itself is read from its file, never printed
    print(f'export PREFECT_API_AUTH_STRING="$(cat {shlex.quote(str(d / PREFECT_AUTH_FILE))})"')
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler = {"up": up, "down": down, "status": status, "env": env_lines}[args.command]
    try:
        return handler(args)
    except (StackError, StorageError) as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stack: interrupted; stopped what had been started", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
