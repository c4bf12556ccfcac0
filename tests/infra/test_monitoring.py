"""The Grafana dashboard queries metrics that the miner and Ray really export."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from opsdefs import INFRA, REPO

DASHBOARD = INFRA / "monitoring" / "grafana" / "unsamv2_mining_dashboard.json"
RAY_METRIC_PREFIX = "ray_"  # Ray prefixes application metrics when it exports them


def _miner_metrics() -> dict[str, str]:
    """{metric name: Counter | Histogram | Gauge} declared in unsamv2/backends/ray_data.py."""
    tree = ast.parse((REPO / "unsamv2" / "backends" / "ray_data.py").read_text())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "Counter", "Histogram", "Gauge") and node.args and isinstance(node.args[0], ast.Constant):
            found[node.args[0].value] = node.func.id
    return found


def _exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def _series_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(ray_[a-z0-9_]+)", expr))


def test_dashboard_is_valid_grafana_json_with_a_datasource_variable():
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["panels"]
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in board["templating"]["list"])
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_every_miner_series_exists_with_the_right_suffix():
    suffixes = {"Counter": ("_total",), "Histogram": ("_bucket", "_sum", "_count"), "Gauge": ("",)}
    exported = {f"{RAY_METRIC_PREFIX}{name}{sfx}" for name, kind in _miner_metrics().items()
                for sfx in suffixes[kind]}
    used = {s for e in _exprs() for s in _series_names(e) if s.startswith("ray_unsamv2_")}
    assert used, "the dashboard shows the miner metrics"
    assert used <= exported, used - exported
    covered = {name for name in _miner_metrics() if any(f"{RAY_METRIC_PREFIX}{name}" in s for s in used)}
    assert covered == set(_miner_metrics()), "every miner metric has a panel"


@pytest.mark.integration
def test_ray_system_series_are_ones_rays_own_dashboards_use():
    import ray

    bundled = "\n".join(p.read_text(errors="ignore") for p in
                        Path(ray.__file__).parent.joinpath("dashboard").rglob("*.py") if "metrics" in str(p))
    system = {s for e in _exprs() for s in _series_names(e) if not s.startswith("ray_unsamv2_")}
    for series in system:
        assert series in bundled, series


def test_every_definition_file_parses():
    import yaml

    files = sorted(INFRA.rglob("*.yaml")) + sorted(INFRA.rglob("*.json")) + [REPO / "prefect.yaml"]
    assert len(files) >= 9
    for path in files:
        docs = [json.loads(path.read_text())] if path.suffix == ".json" else \
            [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), path


def test_prometheus_stack_values_match_the_podmonitors():
    import yaml

    values = yaml.safe_load((INFRA / "monitoring" / "kube-prometheus-stack-values.yaml").read_text())
    assert values["grafana"]["grafana.ini"]["security"]["allow_embedding"] is True
    monitors = list(yaml.safe_load_all((INFRA / "k8s" / "monitoring.yaml").read_text()))
    assert all(m["metadata"]["labels"]["release"] == "prometheus" for m in monitors)
    assert {m["metadata"]["namespace"] for m in monitors} == {"prometheus-system"}
