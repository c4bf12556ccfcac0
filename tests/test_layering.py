"""The import direction of docs/architecture.md#layers: flows -> tasks -> unsamv2; ray only in unsamv2/backends."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(path: Path) -> set[str]:
    """Top-level module names imported anywhere in a file (module level or inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value.split(".")[0])
    return names


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


RULES = [
    # (folder, excluded sub-folder, forbidden top-level imports)
    ("unsamv2", "unsamv2/backends", {"prefect", "ray", "tasks", "flows"}),
    ("unsamv2/backends", None, {"prefect", "tasks", "flows"}),
    ("tasks", None, {"ray", "flows"}),
    ("flows", None, {"ray"}),
]


@pytest.mark.parametrize(("folder", "excluded", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_import_direction(folder, excluded, forbidden):
    offenders = []
    for path in files(folder):
        rel = path.relative_to(ROOT).as_posix()
        if excluded and rel.startswith(excluded + "/"):
            continue
        bad = imported_roots(path) & forbidden
        if bad:
            offenders.append(f"{rel}: {sorted(bad)}")
    assert not offenders, "layering violated:\n" + "\n".join(offenders)


def test_checker_sees_nested_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import ray.data\n    from prefect import flow\n")
    assert imported_roots(sample) == {"ray", "prefect"}


@pytest.mark.integration
def test_importing_the_library_has_no_heavy_side_effects():
    import subprocess
    import sys

    code = "import sys, unsamv2, unsamv2.data, unsamv2.cli; print(sorted(m for m in ('ray','prefect','sam2','hydra') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def imported_modules(path: Path) -> set[str]:
    """Full dotted names imported anywhere in a file (absolute imports only)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


PACKAGE_RULES = [
    # (package folder, forbidden package prefixes): no cycle between the engine, backends and jobs
    ("unsamv2/pipeline", ("unsamv2.backends", "unsamv2.jobs")),
    ("unsamv2/backends", ("unsamv2.jobs", "unsamv2.train.recipe", "unsamv2.cli")),
    ("unsamv2/data", ("unsamv2.pipeline", "unsamv2.backends", "unsamv2.jobs", "unsamv2.mining", "unsamv2.train")),
]


@pytest.mark.parametrize(("folder", "forbidden"), PACKAGE_RULES, ids=[r[0] for r in PACKAGE_RULES])
def test_package_direction(folder, forbidden):
    offenders = [f"{p.relative_to(ROOT).as_posix()}: {sorted(m for m in imported_modules(p) if m.startswith(forbidden))}"
                 for p in files(folder) if any(m.startswith(forbidden) for m in imported_modules(p))]
    assert not offenders, "package direction violated:\n" + "\n".join(offenders)
