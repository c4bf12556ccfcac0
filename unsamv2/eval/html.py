"""A self-contained HTML page of a report: tables, plots and gallery inlined as base64 PNG."""

from __future__ import annotations

import base64
from html import escape

from unsamv2.eval.report import EvalReport, interactive_table, settings_summary, whole_image_table

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f4f6f8}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.pass{color:#1e8449}.regression{color:#c0392b}.no_reference{color:#7f8c8d}code{background:#f4f6f8;padding:1px 4px}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
"""

PLOT_TITLES = {
    "iou_vs_clicks": "Mean IoU against the number of clicks",
    "noc": "Number of clicks to the IoU threshold",
    "granularity_sweep": "Granularity sweep (oracle): IoU after the first click at each g",
    "chosen_granularity": "Granularity chosen by the oracle",
    "ar_by_granularity": "Whole-image average recall by granularity",
}


def _table(header: list[str], rows: list[list[str]]) -> str:
    if not header:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def render_html(report: EvalReport, plots: dict[str, bytes], verdict_html: str | None = None) -> str:
    """The full page; ``plots`` from :func:`unsamv2.eval.plots.render_plots`."""
    meta = _table(["run", "model", "checkpoint", "sha256", "code", "created"], [[
        report.run_id, report.model, report.checkpoint or "–", report.checkpoint_sha256[:16] or "–",
        report.code_version, report.created_at]])
    proto = report.protocol
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>unsamv2 evaluation {escape(report.run_id)}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>Evaluation <code>{escape(report.run_id)}</code></h1>", meta,
             f"<p>Protocol: up to {escape(str(proto.get('max_clicks')))} clicks, policies "
             f"{escape(', '.join(proto.get('policies', [])))}, g sweep {escape(str(proto.get('granularities')))}, "
             f"mask feedback {escape(str(proto.get('mask_feedback')))}, protocol hash "
             f"<code>{escape(str(proto.get('protocol_hash')))}</code>.</p>"]
    if settings_summary(proto):
        parts.append(f"<p>{escape(settings_summary(proto))}.</p>")
    if verdict_html:
        parts.append(verdict_html)
    for d in report.datasets:
        parts.append(f"<h2>{escape(d.name)}</h2><p>{escape(d.kind)} dataset, target IoU {d.target_iou:.2f}, "
                     f"{d.n_images} images, {d.n_objects} objects, data version <code>{escape(d.version)}</code>.</p>")
        parts.append(_table(*interactive_table(d)))
        parts.append(_table(*whole_image_table(d)))
    parts.append("<h2>Plots</h2>")
    for name, png in plots.items():
        title = PLOT_TITLES.get(name, name)
        parts.append(f"<figure id='plot-{escape(name)}'>{_img(png, title)}<figcaption>{escape(title)}"
                     "</figcaption></figure>")
    if report.gallery:
        parts.append("<h2>Gallery</h2>")
        for item in report.gallery:
            parts.append(f"<figure>{_img(item.png, item.caption)}<figcaption>{escape(item.caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
