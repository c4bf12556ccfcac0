"""The design the code cites lives in the repository: every ``architecture.md#anchor`` reference in
the code, the tests and the docs names an anchor of docs/architecture.md, and nothing cites the
out-of-tree DESIGN.md any more."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SOURCES = ("unsamv2", "tasks", "flows", "scripts", "tests", "docs", "benchmarks")


def _files() -> list[Path]:
    out = [ROOT / "README.md", ROOT / "BENCHMARKS.md"]
    for folder in SOURCES:
        out += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md") and p.is_file()]
    return [p for p in out if p.exists() and p != Path(__file__).resolve()]


def test_every_architecture_anchor_that_is_cited_exists():
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', ARCHITECTURE.read_text()))
    assert {"layers", "data-contracts", "mask-table", "mining", "model", "training", "inference",
            "evaluation"} <= anchors
    missing = []
    for path in _files():
        for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for anchor in re.findall(r"architecture\.md#([a-z0-9-]+)", line):
                if anchor not in anchors:
                    missing.append(f"{path.relative_to(ROOT)}:{line_no}: #{anchor}")
            # "#model, #inference" after a first architecture.md#... reference
            for extra in re.findall(r"architecture\.md#[a-z0-9-]+((?:, #[a-z0-9-]+)+)", line):
                missing += [f"{path.relative_to(ROOT)}:{line_no}: #{a}" for a in re.findall(r"#([a-z0-9-]+)", extra)
                            if a not in anchors]
    assert not missing, "cited anchors that docs/architecture.md lacks:\n" + "\n".join(missing)


def test_nothing_cites_the_out_of_tree_design_file():
    stale = [f"{p.relative_to(ROOT)}:{n}" for p in _files()
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if "DESIGN.md" in line]
    assert not stale, "cite docs/architecture.md#<anchor> instead of DESIGN.md:\n" + "\n".join(stale)
