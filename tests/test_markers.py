"""The two test tiers stay honest: a test that starts Ray, Prefect, moto, a subprocess or a network
socket carries the ``integration`` marker (``make test-fast`` deselects it), found by reading the
test files, not by running them.

A test *uses* such a thing when its function, a fixture it requests (from its module or a
``conftest.py`` above it, autouse ones included), or a helper it calls (a function or class of its
module, or of ``tests/support`` and sibling helper modules) imports ``ray``, ``prefect``, ``moto``,
``flows``, ``tasks``, ``subprocess``, ``socket`` or ``multiprocessing``, loads one of them with
``importlib.import_module``, calls ``init_ray`` or the Ray backends (``unsamv2.backends.ray_train``,
``ray_jobs``, ``remote``), passes ``backend="ray"`` (or ``"ray-job"``), or calls ``os.system`` /
``os.popen`` / ``os.fork``. Limits: what the library does internally behind a plain call is not
followed (pass ``backend="ray"`` literally or mark the test by hand), nor names built at run time.

Test modules also never import those packages at module level, so collecting the unit tier
(``-m "not integration"``, which still imports every test module) stays cheap.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
HEAVY_ROOTS = {
    "ray": "Ray", "prefect": "Prefect", "moto": "moto",
    "subprocess": "a subprocess", "socket": "a network socket", "multiprocessing": "a subprocess",
}
PROJECT_ROOTS = ("flows", "tasks")  # heavy when the module imports prefect or ray at module level
HEAVY_MODULES = {"unsamv2.backends.ray_train": "Ray", "unsamv2.backends.ray_jobs": "Ray",
                 "unsamv2.backends.remote": "Ray"}
HEAVY_NAMES = {"init_ray": "Ray"}
HEAVY_OS_CALLS = {"system", "popen", "fork", "forkpty", "spawnl", "spawnv", "execv", "execvp"}
MODULE_LEVEL_FORBIDDEN = {"ray", "prefect", "moto"}


def _project_module_imports_services(module: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``flows.x`` / ``tasks.x`` (or the package itself) imports prefect or ray when imported."""
    parts = module.split(".")
    for path in (REPO.joinpath(*parts).with_suffix(".py"), REPO.joinpath(*parts, "__init__.py")):
        if path.is_file() and module not in seen:
            break
    else:
        return False
    for node in ast.parse(path.read_text()).body:  # module level: what importing it runs
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
        for name in names:
            root = name.split(".")[0]
            if root in ("prefect", "ray") or (
                    root in PROJECT_ROOTS and _project_module_imports_services(name, seen | {module})):
                return True
    return len(parts) > 1 and _project_module_imports_services(parts[0], seen | {module})


def _heavy_import(module: str) -> str | None:
    for name, why in HEAVY_MODULES.items():
        if module == name or module.startswith(name + "."):
            return why
    root = module.split(".")[0]
    if root in PROJECT_ROOTS:
        # `from flows.mine import mine` names flows.mine.mine: try the longest importable prefix
        parts = module.split(".")
        for end in range(len(parts), 0, -1):
            if _project_module_imports_services(".".join(parts[:end])):
                return f"Prefect ({'.'.join(parts[:end])})"
        return None
    return HEAVY_ROOTS.get(root)


def _is_mark(node: ast.AST, name: str) -> bool:
    """``pytest.mark.<name>`` or ``pytest.mark.<name>(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    return (isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.value, ast.Attribute)
            and node.value.attr == "mark")


def _is_fixture(node: ast.AST) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Attribute) and target.attr == "fixture" or (
        isinstance(target, ast.Name) and target.id == "fixture")


@dataclass
class Module:
    path: Path
    tree: ast.Module
    defs: dict[str, ast.AST] = field(default_factory=dict)  # module-level functions and classes
    imports: dict[str, str] = field(default_factory=dict)  # bound name -> dotted module (or module.attr)
    fixtures: dict[str, ast.FunctionDef] = field(default_factory=dict)
    autouse: list[str] = field(default_factory=list)
    marked: bool = False  # module-level pytestmark holds integration

    @classmethod
    def parse(cls, path: Path) -> Module:
        tree = ast.parse(path.read_text(), filename=str(path))
        mod = cls(path, tree)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                mod.defs[node.name] = node
                for dec in getattr(node, "decorator_list", []):
                    if _is_fixture(dec):
                        name = node.name
                        if isinstance(dec, ast.Call):
                            for kw in dec.keywords:
                                if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                                    name = kw.value.value
                                if kw.arg == "autouse" and isinstance(kw.value, ast.Constant) and kw.value.value:
                                    mod.autouse.append(name)
                        mod.fixtures[name] = node
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    mod.imports[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    mod.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                      for t in node.targets):
                mod.marked = any(_is_mark(n, "integration") for n in ast.walk(node.value))
        return mod


class Index:
    """Every Python file under tests/, parsed once, and the reason each definition is heavy."""

    def __init__(self, root: Path = TESTS) -> None:
        self.root = root
        self.modules = {p: Module.parse(p) for p in sorted(root.rglob("*.py"))}
        self._memo: dict[tuple[Path, str], str | None] = {}

    def helper_module(self, dotted: str, near: Path) -> Module | None:
        """The test-suite module that ``dotted`` names (``support.x`` or a sibling of ``near``)."""
        parts = dotted.split(".")
        for base in (self.root, near.parent):
            path = base.joinpath(*parts).with_suffix(".py")
            if path in self.modules:
                return self.modules[path]
        return None

    def resolve(self, mod: Module, dotted: str) -> tuple[Module, str] | None:
        """``support.net.free_port`` -> (support/net.py, "free_port") when it is a helper definition."""
        head, _, name = dotted.rpartition(".")
        target = self.helper_module(head, mod.path) if head else None
        return (target, name) if target is not None and name in target.defs else None

    def reason(self, mod: Module, name: str) -> str | None:
        """Why module-level definition ``name`` of ``mod`` is heavy (None: it is not)."""
        key = (mod.path, name)
        if key not in self._memo:
            self._memo[key] = None  # recursion guard
            self._memo[key] = self.body_reason(mod, mod.defs[name])
        return self._memo[key]

    def fixture_reason(self, mod: Module, name: str) -> str | None:
        for owner in self.fixture_scopes(mod):
            if name in owner.fixtures:
                return self.reason(owner, owner.fixtures[name].name)
        return None

    def fixture_scopes(self, mod: Module) -> list[Module]:
        """The module, then the conftest.py files from its folder up to tests/."""
        scopes, folder = [mod], mod.path.parent
        while True:
            conf = folder / "conftest.py"
            if conf in self.modules and conf != mod.path:
                scopes.append(self.modules[conf])
            if folder == self.root:
                return scopes
            folder = folder.parent

    def body_reason(self, mod: Module, node: ast.AST) -> str | None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for arg in node.args.args + node.args.kwonlyargs:
                why = self.fixture_reason(mod, arg.arg)
                if why:
                    return f"{why} (fixture {arg.arg})"
        for sub in ast.walk(node):
            why = self.node_reason(mod, sub)
            if why:
                return why
        return None

    def node_reason(self, mod: Module, sub: ast.AST) -> str | None:
        if isinstance(sub, ast.Import):
            for alias in sub.names:
                if _heavy_import(alias.name):
                    return f"{_heavy_import(alias.name)} (import {alias.name})"
        elif isinstance(sub, ast.ImportFrom) and sub.level == 0 and sub.module:
            if _heavy_import(sub.module):
                return f"{_heavy_import(sub.module)} (from {sub.module} import ...)"
            for alias in sub.names:
                if alias.name in HEAVY_NAMES:
                    return f"{HEAVY_NAMES[alias.name]} ({alias.name})"
                helper = self.resolve(mod, f"{sub.module}.{alias.name}")
                if helper and self.reason(*helper):
                    return f"{self.reason(*helper)} (via {sub.module}.{alias.name})"
        elif isinstance(sub, ast.Call):
            func = sub.func
            if (isinstance(func, ast.Attribute) and func.attr == "import_module" and sub.args
                    and isinstance(sub.args[0], ast.Constant) and isinstance(sub.args[0].value, str)
                    and _heavy_import(sub.args[0].value)):
                return f"{_heavy_import(sub.args[0].value)} (import_module)"
            if (isinstance(func, ast.Attribute) and func.attr in HEAVY_OS_CALLS
                    and isinstance(func.value, ast.Name) and func.value.id == "os"):
                return f"a subprocess (os.{func.attr})"
            for kw in sub.keywords:
                if (kw.arg and kw.arg.endswith("backend") and isinstance(kw.value, ast.Constant)
                        and kw.value.value in ("ray", "ray-job")):
                    return f"Ray ({kw.arg}={kw.value.value!r})"
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            return self.name_reason(mod, sub.id)
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            bound = mod.imports.get(sub.value.id)  # e.g. `from support import faults` ... faults.inject
            if bound and sub.value.id not in mod.defs:
                target = self.helper_module(bound, mod.path)
                if target is not None and sub.attr in target.defs and self.reason(target, sub.attr):
                    return f"{self.reason(target, sub.attr)} (via {bound}.{sub.attr})"
        return None

    def name_reason(self, mod: Module, name: str) -> str | None:
        if name in mod.defs:
            return self.reason(mod, name)
        bound = mod.imports.get(name)
        if bound is None:
            return None
        if name in HEAVY_NAMES and not bound.startswith(("support.",)):
            return f"{HEAVY_NAMES[name]} ({name})"
        if _heavy_import(bound):
            return f"{_heavy_import(bound)} ({bound})"
        helper = self.resolve(mod, bound)
        if helper and self.reason(*helper):
            return f"{self.reason(*helper)} (via {bound})"
        return None

    def tests(self):
        """(module, test node, its class or None) of every collected-looking test function."""
        for path, mod in self.modules.items():
            if not (path.name.startswith("test_") and path.suffix == ".py"):
                continue
            for node in mod.tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                    yield mod, node, None
                elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                            yield mod, item, node

    def autouse_reason(self, mod: Module) -> str | None:
        for owner in self.fixture_scopes(mod):
            for name in owner.autouse:
                why = self.reason(owner, owner.fixtures[name].name)
                if why:
                    return f"{why} (autouse fixture {name})"
        return None

    def unmarked_heavy_tests(self) -> list[str]:
        out = []
        for mod, node, cls in self.tests():
            marked = mod.marked or any(_is_mark(d, "integration") for d in node.decorator_list) or (
                cls is not None and any(_is_mark(d, "integration") for d in cls.decorator_list))
            if marked:
                continue
            why = self.body_reason(mod, node) or self.autouse_reason(mod)
            for dec in node.decorator_list:  # @pytest.mark.usefixtures("name")
                if isinstance(dec, ast.Call) and _is_mark(dec.func, "usefixtures"):
                    for arg in dec.args:
                        if isinstance(arg, ast.Constant) and not why:
                            why = self.fixture_reason(mod, arg.value)
            if why:
                where = f"{cls.name}." if cls is not None else ""
                out.append(f"{mod.path.relative_to(self.root.parent)}::{where}{node.name} uses {why}")
        return out


def module_level_heavy_imports(mod: Module) -> list[str]:
    bad = []
    for node in mod.tree.body:
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
        bad += [n for n in names if n.split(".")[0] in MODULE_LEVEL_FORBIDDEN
                or (n.split(".")[0] in PROJECT_ROOTS and _heavy_import(n))]
    return bad


def test_every_test_that_starts_services_or_processes_is_marked_integration():
    offenders = Index().unmarked_heavy_tests()
    assert not offenders, ("mark these @pytest.mark.integration (or the module: pytestmark), so that "
                           "`make test-fast` leaves them out:\n" + "\n".join(offenders))


def test_test_modules_import_services_only_inside_tests():
    index = Index()
    offenders = [f"{path.relative_to(TESTS.parent)}: {bad}" for path, mod in index.modules.items()
                 if (bad := module_level_heavy_imports(mod))]
    assert not offenders, ("move these imports into the tests or fixtures that use them (collecting the "
                           "unit tier imports every test module):\n" + "\n".join(offenders))


SAMPLE = {
    "support/helpers.py": "import socket\n\ndef free():\n    with socket.socket() as s:\n        return s\n\n"
                          "def pure():\n    return 1\n",
    "conftest.py": "import pytest\n\n@pytest.fixture\ndef harness():\n    from prefect.testing.utilities import x\n"
                   "    yield x\n",
    "pkg/test_sample.py": (
        "import subprocess\nimport pytest\nfrom support.helpers import free, pure\nfrom support import helpers\n\n"
        "def _run():\n    return subprocess.run(['true'])\n\n"
        "def test_cli():\n    _run()\n\n"
        "def test_pure():\n    assert pure() == 1\n\n"
        "def test_port():\n    free()\n\n"
        "def test_port_attr():\n    helpers.free()\n\n"
        "def test_flow(harness):\n    pass\n\n"
        "def test_nested():\n    import ray\n\n"
        "def test_backend(job):\n    job(backend='ray')\n\n"
        "@pytest.mark.integration\ndef test_marked():\n    import ray\n\n"
        "class TestGroup:\n    def test_method(self):\n        _run()\n"),
    "pkg/test_marked_module.py": "import pytest\npytestmark = [pytest.mark.integration]\n\n"
                                 "def test_any():\n    import moto\n",
}


def test_the_checker_finds_direct_transitive_fixture_and_helper_uses(tmp_path):
    for rel, text in SAMPLE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = {line.split(" uses ")[0].rsplit("::", 1)[1]: line.split(" uses ")[1]
             for line in Index(tmp_path).unmarked_heavy_tests()}
    assert set(found) == {"test_cli", "test_port", "test_port_attr", "test_flow", "test_nested", "test_backend",
                          "TestGroup.test_method"}
    assert found["test_cli"].startswith("a subprocess") and found["test_flow"].startswith("Prefect")
    assert found["test_port"].startswith("a network socket") and found["test_backend"].startswith("Ray")
    assert module_level_heavy_imports(Module.parse(tmp_path / "pkg" / "test_sample.py")) == []
    (tmp_path / "pkg" / "test_top.py").write_text("from flows.mine import mine\nimport ray.data\n")
    assert module_level_heavy_imports(Module.parse(tmp_path / "pkg" / "test_top.py")) == ["flows.mine", "ray.data"]


@pytest.mark.parametrize("marker", ["integration", "slow"])
def test_the_tier_markers_are_registered(marker):
    import tomllib

    markers = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith(f"{marker}:") for m in markers)
