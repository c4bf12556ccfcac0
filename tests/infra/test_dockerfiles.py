"""The CPU and CUDA Dockerfiles, checked statically (no Docker engine here): pinned, non-root,
dependency layers before the source, sam2 without build isolation, and a complete build context."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex

import pytest
import tomllib
from opsdefs import INFRA, REPO, constraints, normalise

DOCKERFILES = sorted((INFRA / "docker").glob("*.Dockerfile"))
SOURCE_DIRS = ("unsamv2", "tasks", "flows")


def instructions(path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        buf += " " + line[:-1] if line.endswith("\\") else " " + line
        if not line.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def args_of(steps) -> dict[str, str]:
    return dict(a.split("=", 1) for kind, a in steps if kind == "ARG" and "=" in a)


def test_both_variants_exist():
    assert [p.name for p in DOCKERFILES] == ["cpu.Dockerfile", "cuda.Dockerfile"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_image_is_pinned(path):
    bases = [a.split()[0] for kind, a in instructions(path) if kind == "FROM"]
    assert bases
    for base in bases:
        name, _, tag = base.partition("@")[0].partition(":")
        assert tag and tag != "latest", base
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{base}: pin a full version (or a digest)"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_versions_come_from_the_constraints(path):
    steps = instructions(path)
    pins = constraints()
    versions = {k.removesuffix("_VERSION").lower(): v for k, v in args_of(steps).items() if k.endswith("_VERSION")}
    assert set(versions) == {"torch", "torchvision", "sam2"}
    for package, version in versions.items():
        assert pins[normalise(package)] == version, f"{path.name}: {package} {version} != constraints"
    pip_runs = [a for kind, a in steps if kind == "RUN" and "pip install" in a]
    for run in pip_runs:
        for command in run.split("&&"):
            if "pip install" in command and "--no-deps" not in command:
                assert "-c /opt/build/constraints.txt" in command, command


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_a_non_root_user(path):
    users = [a for kind, a in instructions(path) if kind == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert "useradd --uid 1000" in path.read_text()


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dependency_layers_come_before_the_source(path):
    steps = instructions(path)
    index = {i: (kind, a) for i, (kind, a) in enumerate(steps)}
    first_source = min(i for i, (kind, a) in index.items()
                       if kind == "COPY" and any(a.split()[0] == d for d in SOURCE_DIRS))
    installs = [i for i, (kind, a) in index.items() if kind == "RUN" and "pip install" in a]
    deps = [i for i in installs if "--no-deps" not in index[i][1]]
    assert deps and max(deps) < first_source, "every dependency install precedes the source COPY"
    order = [next(i for i in deps if word in index[i][1]) for word in ("torch==", "sam2==", "-r /opt/build")]
    assert order == sorted(order), "torch, then sam2 (built against it), then the project's deps"
    sam2 = index[order[1]][1]
    assert "--no-build-isolation" in sam2
    assert "SAM2_BUILD_CUDA=0" in " ".join(a for kind, a in steps if kind == "ENV")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_build_context_holds_every_copied_path(path):
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def included(rel: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!")
            if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat.removesuffix("/**") + "/*") \
                    or rel == pat.removesuffix("/**"):
                keep = negate
        return keep

    for kind, a in instructions(path):
        if kind == "COPY":
            for src in shlex.split(a)[:-1]:
                if not src.startswith("--"):
                    assert (REPO / src).exists(), src
                    probe = f"{src}/__init__.py" if (REPO / src).is_dir() else src
                    assert included(probe), f".dockerignore drops {src}"
    assert not included(".venv/bin/python") and not included("runs/demo/x.png")


def test_requirement_list_covers_pyproject_and_is_fully_pinned():
    spec = importlib.util.spec_from_file_location("reqs", INFRA / "docker" / "requirements_from_pyproject.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = module.requirements(pyproject, ["all"])
    names = [normalise(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in reqs]
    assert "unsamv2" not in names, "self-references are expanded"
    assert {"ray", "prefect", "s3fs", "dask", "torch", "sam2"} <= set(names)
    missing = [n for n in names if n not in constraints()]
    assert not missing, f"not pinned in requirements/constraints.txt: {missing}"
    with pytest.raises(SystemExit):
        module.requirements(pyproject, ["no-such-extra"])


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_install_the_ray_driver_wrapper(path):
    copies = [a for kind, a in instructions(path) if kind == "COPY"]
    assert "--chmod=0755 infra/docker/ray-driver-entrypoint.sh /usr/local/bin/unsamv2-ray-driver" in copies


def _fake_ray(tmp_path, start_status: int = 0):
    """A `ray` on PATH that records its arguments (the wrapper's only dependency)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    script = bin_dir / "ray"
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" = start ] && exit {start_status}\nexit 0\n')
    script.chmod(0o755)
    return bin_dir, calls


def _driver(tmp_path, bin_dir, address: str | None, *command: str):
    import os
    import subprocess

    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    if address is not None:
        env["RAY_ADDRESS"] = address
    return subprocess.run(["bash", str(INFRA / "docker" / "ray-driver-entrypoint.sh"), *command], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


@pytest.mark.integration
def test_driver_wrapper_joins_runs_and_leaves(tmp_path):
    bin_dir, calls = _fake_ray(tmp_path)
    done = _driver(tmp_path, bin_dir, "head-svc:6379", "sh", "-c", "echo ran > out.txt; exit 3")
    assert done.returncode == 3, done.stderr  # the command's status
    assert (tmp_path / "out.txt").read_text() == "ran\n"
    start, stop = calls.read_text().splitlines()
    assert start.startswith("start --address=head-svc:6379 --num-cpus=0 --num-gpus=0")
    assert stop == "stop"


@pytest.mark.parametrize("address", [None, "auto", "ray://head:10001"])
@pytest.mark.integration
def test_driver_wrapper_needs_a_gcs_address(tmp_path, address):
    bin_dir, calls = _fake_ray(tmp_path)
    done = _driver(tmp_path, bin_dir, address, "true")
    assert done.returncode == 2 and "GCS address" in done.stderr
    assert not calls.exists(), "nothing started"


@pytest.mark.integration
def test_driver_wrapper_reports_a_failed_join(tmp_path):
    bin_dir, calls = _fake_ray(tmp_path, start_status=1)
    done = _driver(tmp_path, bin_dir, "head-svc:6379", "sh", "-c", "touch ran")
    assert done.returncode == 3 and "could not join" in done.stderr
    assert not (tmp_path / "ran").exists()
