"""The lazy export maps (``_EXPORTS`` + ``__getattr__`` in a package's ``__init__``) and the
``if TYPE_CHECKING:`` imports that show the same names to the type checker agree, name for name and
module for module, and every exported name exists in its module (read from the source, nothing is
imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in (ROOT / "unsamv2").glob("*/__init__.py") if "_EXPORTS" in p.read_text())


def _module_of(package: str, target: str) -> str:
    return target if target.startswith("unsamv2.") else f"{package}.{target}"


def _exports(tree: ast.Module) -> dict[str, str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("no _EXPORTS")


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module, ast.unparse(stmt)
                for alias in stmt.names:
                    assert alias.asname == alias.name, f"{ast.unparse(stmt)}: re-export as `name as name`"
                    found[alias.name] = stmt.module
    return found


def _defines(module: str, name: str) -> bool:
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(getattr(t, "id", "") == name for t in targets):
                return True
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            return True
    return False


def test_packages_found():
    assert {p.name for p in PACKAGES} >= {"eval", "mining", "model", "train"}


@pytest.mark.parametrize("folder", PACKAGES, ids=[p.name for p in PACKAGES])
def test_type_checking_imports_match_the_export_map(folder):
    package = f"unsamv2.{folder.name}"
    tree = ast.parse((folder / "__init__.py").read_text())
    exports = {name: _module_of(package, target) for name, target in _exports(tree).items()}
    assert _type_checking_imports(tree) == exports
    missing = [f"{module}.{name}" for name, module in exports.items() if not _defines(module, name)]
    assert not missing, f"exported but not defined: {missing}"
