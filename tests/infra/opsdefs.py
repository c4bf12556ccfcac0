"""Helpers for the operations tests: the repository's YAML/JSON definitions and pins."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
IMAGE_REPOSITORY = "ghcr.io/unsamv2/unsamv2"


@cache
def constraints() -> dict[str, str]:
    """requirements/constraints.txt as {normalised name: version}."""
    pins = {}
    for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def image(variant: str) -> str:
    """The project's image for ``variant`` ("cpu" or "cuda") at the project's version."""
    return f"{IMAGE_REPOSITORY}:{project_version()}-{variant}"


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def prefect_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())


@cache
def k8s_job_template() -> dict[str, Any]:
    return json.loads((INFRA / "prefect" / "k8s-base-job-template.json").read_text())


@cache
def stack_module() -> ModuleType:
    """scripts/stack.py imported as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("unsamv2_stack_script", REPO / "scripts" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
