"""Write a report to a folder or s3:// prefix: JSON, Markdown, HTML, plot PNGs, per-object Parquet."""

from __future__ import annotations

import io
import json

from unsamv2.data import storage
from unsamv2.eval.history import RegressionVerdict
from unsamv2.eval.report import EvalReport, to_markdown


def _verdict_html(verdict: RegressionVerdict) -> str:
    from html import escape

    rows = "".join(f"<tr><td>{escape(d.against)}</td><td>{escape(d.dataset)}</td><td>{escape(d.metric)}</td>"
                   f"<td>{d.reference:.4g}</td><td>{d.current:.4g}</td><td>{d.tolerance:g}</td></tr>"
                   for d in verdict.regressions)
    table = (f"<table><tr><th>against</th><th>dataset</th><th>metric</th><th>reference</th><th>current</th>"
             f"<th>tolerance</th></tr>{rows}</table>") if rows else ""
    return f"<p class='{verdict.status}'><b>Regression check: {verdict.status}</b> — {escape(verdict.summary())}</p>{table}"


def write_report(report: EvalReport, out: str, verdict: RegressionVerdict | None = None) -> dict[str, str]:
    """Write ``report`` (and ``verdict``) under ``out``; returns ``{kind: uri}`` of what was written:
    ``json`` (report.json), ``markdown`` (report.md), ``html`` (report.html, self-contained),
    ``verdict`` (verdict.json), ``objects`` (objects.parquet) and ``plot:<name>`` (plots/<name>.png)."""
    from unsamv2.eval.html import render_html
    from unsamv2.eval.plots import render_plots

    storage.makedirs(out)
    written: dict[str, str] = {}

    def put(kind: str, name: str, data: bytes) -> None:
        uri = storage.join(out, *name.split("/"))
        storage.write_bytes(uri, data)
        written[kind] = uri

    plots = render_plots(report)
    put("json", "report.json", report.to_json().encode())
    put("markdown", "report.md", to_markdown(report, verdict.to_markdown() if verdict else None).encode())
    put("html", "report.html", render_html(report, plots, _verdict_html(verdict) if verdict else None).encode())
    for name, png in plots.items():
        put(f"plot:{name}", f"plots/{name}.png", png)
    if verdict is not None:
        put("verdict", "verdict.json", json.dumps(verdict.to_dict(), indent=1).encode())
    if report.object_rows:
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(report.object_rows), buf, compression="zstd")
        put("objects", "objects.parquet", buf.getvalue())
    return written
