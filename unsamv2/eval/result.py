"""The typed result of evaluating a checkpoint: where the report went, the flat metrics, the
granularity probe and the regression verdict (docs/architecture.md#reports).

:func:`record_report` turns an :class:`~unsamv2.eval.report.EvalReport` into that result: it
checks the run against the history (when there is one), appends it, and writes the report files.
:func:`unsamv2.eval.checkpoint.evaluate_checkpoint` and :func:`~unsamv2.eval.checkpoint.run_eval`
return it; the CLI and the flows read ``regressed`` from it instead of reopening ``verdict.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded when used: importing this module stays light
    from unsamv2.eval.history import RegressionVerdict
    from unsamv2.eval.report import EvalReport

NO_HISTORY = "no history configured"


@dataclass(frozen=True)
class EvalResult:
    """One evaluation run.

    ``files``: ``{kind: uri}`` of what was written (``json``, ``markdown``, ``html``, ``objects``,
    ``plot:<name>``, and ``verdict`` / ``probe`` when there are some); ``metrics``:
    ``{"<dataset>/<metric>": value}``; ``probe``: the one-click granularity probe (None when it
    did not run); ``verdict``: the regression check against the history (None without history).
    """

    run_id: str
    files: dict[str, str]
    metrics: dict[str, float]
    probe: dict[str, Any] | None = None
    verdict: RegressionVerdict | None = None

    @property
    def regressed(self) -> bool:
        """True when the regression check found a regression (False without history)."""
        return self.verdict is not None and self.verdict.regressed

    @property
    def summary(self) -> str:
        """The verdict's one line, or that no history was configured."""
        return self.verdict.summary() if self.verdict is not None else NO_HISTORY

    def with_probe(self, probe: dict[str, Any], uri: str) -> EvalResult:
        """This result with the granularity probe (written to ``uri``) added."""
        return replace(self, probe=probe, files={**self.files, "probe": uri})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values for Prefect results and artifacts: ``run_id``, ``files``,
        ``metrics``, ``probe``, ``verdict`` (the verdict's one line, or None without history; the
        whole verdict is ``files["verdict"]``) and ``regressed``."""
        return {"run_id": self.run_id, "files": dict(self.files),
                "metrics": {k: float(v) for k, v in self.metrics.items()},
                "probe": dict(self.probe) if self.probe is not None else None,
                "verdict": self.verdict.summary() if self.verdict is not None else None,
                "regressed": self.regressed}


def record_report(report: EvalReport, out_uri: str, history_uri: str | None = None) -> EvalResult:
    """Check ``report`` against the history at ``history_uri`` (if given) and append it there,
    then write the report files (with the verdict) under ``out_uri``; returns the result."""
    from unsamv2.eval.history import append_history, check_regressions
    from unsamv2.eval.output import write_report

    verdict = None
    if history_uri:
        verdict = check_regressions(report, history_uri)
        append_history(history_uri, report)
    files = write_report(report, out_uri, verdict)
    metrics = {f"{d}/{m}": v for (d, m), v in report.metrics().items()}
    return EvalResult(run_id=report.run_id, files=files, metrics=metrics, verdict=verdict)
