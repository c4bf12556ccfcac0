"""Run history (Parquet, local or s3://) and regression verdicts against the previous run and a
pinned baseline.

Store layout (``store`` is a folder or an ``s3://`` prefix)::

    store/history.parquet   # one row per (run, dataset, metric); appended by every run
    store/baseline.json     # {"run_id": ...}: the pinned baseline run (``pin_baseline``)

"Previous" is the latest other run with the same protocol hash (else simply the latest other run).
A metric is compared only with runs of the same dataset, data version and protocol hash; others
are reported as incomparable. Appending is read-modify-write: run one writer per store at a time
(the nightly deployment has a concurrency limit of 1). A regression is a change in the bad direction larger than the
metric's tolerance (NoC/NoF: higher is worse; IoU/AR: lower is worse).
"""

from __future__ import annotations

import fnmatch
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from unsamv2.data import storage
from unsamv2.errors import InputError, SchemaError
from unsamv2.eval.report import EvalReport

HISTORY_FILE = "history.parquet"
BASELINE_FILE = "baseline.json"
HISTORY_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("created_at", pa.string()), ("model", pa.string()),
    ("checkpoint", pa.string()), ("checkpoint_sha256", pa.string()), ("code_version", pa.string()),
    ("protocol_hash", pa.string()), ("dataset", pa.string()), ("data_version", pa.string()),
    ("metric", pa.string()), ("value", pa.float64()),
])
# Absolute tolerances by metric-name pattern (first match wins); unmatched metrics are never flagged.
DEFAULT_TOLERANCES: dict[str, float] = {
    "*/NoC*": 0.05,  # clicks
    "*/1-IoU": 0.005,  # IoU fraction (0.5 points)
    "*/mIoU@*": 0.005,
    "whole/AR*@g=*": 0.01,
    "whole/AR*": 0.005,
}


def lower_is_better(metric: str) -> bool:
    """NoC, NoF and timings go down when things improve; IoU and AR go up."""
    leaf = metric.split("/")[-1]
    return leaf.startswith(("NoC", "NoF", "sec_"))


def history_rows(report: EvalReport) -> list[dict[str, Any]]:
    """The report's flat metrics as history rows."""
    versions = {d.name: d.version for d in report.datasets}
    phash = str(report.protocol.get("protocol_hash", ""))
    return [{"run_id": report.run_id, "created_at": report.created_at, "model": report.model,
             "checkpoint": report.checkpoint, "checkpoint_sha256": report.checkpoint_sha256,
             "code_version": report.code_version, "protocol_hash": phash, "dataset": ds,
             "data_version": versions[ds], "metric": metric, "value": value}
            for (ds, metric), value in report.metrics().items()]


def read_history(store: str) -> pa.Table:
    """The history table (empty with the right schema if the store has none yet)."""
    uri = storage.join(store, HISTORY_FILE)
    if not storage.exists(uri):
        return HISTORY_SCHEMA.empty_table()
    table = pq.read_table(io.BytesIO(storage.read_bytes(uri)))
    missing = set(HISTORY_SCHEMA.names) - set(table.column_names)
    if missing:
        raise SchemaError(f"{uri} lacks the columns {sorted(missing)}; it is not an unsamv2 eval history.")
    return table.select(HISTORY_SCHEMA.names).cast(HISTORY_SCHEMA)


def append_history(store: str, report: EvalReport) -> str:
    """Add the report's rows to the store's history (replacing rows of the same run_id, so a
    retried run does not count twice); returns the history URI."""
    old = read_history(store)
    keep = [r for r in old.to_pylist() if r["run_id"] != report.run_id]
    table = pa.Table.from_pylist(keep + history_rows(report), schema=HISTORY_SCHEMA)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    uri = storage.join(store, HISTORY_FILE)
    storage.write_bytes(uri, buf.getvalue())
    return uri


def pin_baseline(store: str, run_id: str) -> None:
    """Pin ``run_id`` (which must be in the history) as the store's baseline."""
    runs = set(read_history(store).column("run_id").to_pylist())
    if run_id not in runs:
        raise InputError(f"run {run_id} is not in the history of {store}; pin one of its runs.")
    storage.write_text(storage.join(store, BASELINE_FILE), json.dumps({"run_id": run_id}))


def pinned_baseline(store: str) -> str | None:
    """The pinned baseline run id, or None."""
    uri = storage.join(store, BASELINE_FILE)
    return json.loads(storage.read_text(uri))["run_id"] if storage.exists(uri) else None


@dataclass(frozen=True)
class MetricDelta:
    """One metric of the current run against one reference run."""

    against: str  # "previous" | "baseline"
    reference_run: str
    dataset: str
    metric: str
    current: float
    reference: float
    tolerance: float | None  # None: informational, never flagged
    regressed: bool

    @property
    def delta(self) -> float:
        return self.current - self.reference


@dataclass(frozen=True)
class RegressionVerdict:
    """Outcome of comparing a run with its previous run and the pinned baseline.

    ``status``: "pass", "regression", or "no_reference" (nothing comparable yet).
    """

    status: str
    previous_run: str | None
    baseline_run: str | None
    deltas: list[MetricDelta] = field(default_factory=list)
    incomparable: list[str] = field(default_factory=list)  # "dataset (why)" entries

    @property
    def regressed(self) -> bool:
        return self.status == "regression"

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.regressed]

    def summary(self) -> str:
        """One line for logs and Prefect states."""
        if self.status == "no_reference":
            return "no comparable previous run or baseline: nothing to compare with."
        if not self.regressed:
            return f"no regression (compared {len(self.deltas)} metric values)."
        worst = ", ".join(f"{d.dataset} {d.metric} {d.reference:.4g}→{d.current:.4g} (vs {d.against})"
                          for d in self.regressions[:5])
        return f"{len(self.regressions)} regression(s): {worst}."

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "regressed": self.regressed, "summary": self.summary()}

    def to_markdown(self) -> str:
        lines = [f"**Regression check: {self.status}** — {self.summary()}"]
        if self.regressions:
            lines += ["", "| against | dataset | metric | reference | current | tolerance |", "|---|---|---|---|---|---|"]
            lines += [f"| {d.against} | {d.dataset} | {d.metric} | {d.reference:.4g} | {d.current:.4g} | "
                      f"{d.tolerance:g} |" for d in self.regressions]
        return "\n".join(lines)


def _tolerance(metric: str, tolerances: Mapping[str, float]) -> float | None:
    for pattern, tol in tolerances.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return float(tol)
    return None


def _latest_other_run(rows: list[dict[str, Any]], run_id: str, protocol_hash: str) -> str | None:
    """The latest run other than ``run_id``, preferring runs with the same protocol hash."""
    for same in (True, False):
        runs = sorted({(r["created_at"], r["run_id"]) for r in rows
                       if r["run_id"] != run_id and (not same or r["protocol_hash"] == protocol_hash)})
        if runs:
            return runs[-1][1]
    return None


def _compare(report: EvalReport, rows: list[dict[str, Any]], ref: str, against: str,
             tolerances: Mapping[str, float]) -> tuple[list[MetricDelta], list[str]]:
    ref_rows = {(r["dataset"], r["metric"]): r for r in rows if r["run_id"] == ref}
    phash, versions = report.protocol.get("protocol_hash"), {d.name: d.version for d in report.datasets}
    deltas, incomparable = [], []
    for (ds, metric), value in report.metrics().items():
        r = ref_rows.get((ds, metric))
        if r is None:
            continue
        if r["protocol_hash"] != phash or r["data_version"] != versions[ds]:
            why = "protocol" if r["protocol_hash"] != phash else "data version"
            note = f"{ds} vs {against} {ref} ({why} differs)"
            if note not in incomparable:
                incomparable.append(note)
            continue
        tol = _tolerance(metric, tolerances)
        worse = (value - r["value"]) if lower_is_better(metric) else (r["value"] - value)
        deltas.append(MetricDelta(against, ref, ds, metric, float(value), float(r["value"]), tol,
                                  tol is not None and worse > tol + 1e-12))
    return deltas, incomparable


def check_regressions(report: EvalReport, store: str,
                      tolerances: Mapping[str, float] | None = None) -> RegressionVerdict:
    """Compare ``report`` with the latest other run in ``store``'s history and with the pinned
    baseline (call before :func:`append_history`, or after: the run itself is skipped)."""
    tolerances = DEFAULT_TOLERANCES if tolerances is None else tolerances
    rows = read_history(store).to_pylist()
    previous = _latest_other_run(rows, report.run_id, str(report.protocol.get("protocol_hash", "")))
    baseline = pinned_baseline(store)
    deltas, incomparable = [], []
    for ref, against in ((previous, "previous"), (baseline, "baseline")):
        if ref is not None and ref != report.run_id:
            d, inc = _compare(report, rows, ref, against, tolerances)
            deltas += d
            incomparable += inc
    status = "no_reference" if not deltas else ("regression" if any(d.regressed for d in deltas) else "pass")
    return RegressionVerdict(status, previous, baseline, deltas, incomparable)
