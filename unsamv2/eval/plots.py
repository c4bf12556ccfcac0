"""Report plots as PNG bytes (matplotlib's object API with the Agg renderer; no pyplot state).

Each function takes an :class:`EvalReport` and returns PNG bytes, or None when the report has no
data for that plot (e.g. no whole-image results, no oracle policy).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from unsamv2.eval.report import EvalReport

COLOURS = ["#2980b9", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#f39c12"]


def _figure(n_panels: int, width: float = 4.2, height: float = 3.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, height), dpi=100)
    return fig, [fig.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]


def _png(fig, bottom: float = 0.0) -> bytes:
    fig.tight_layout(rect=(0, bottom, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _colour(names: list[str], name: str) -> str:
    return COLOURS[names.index(name) % len(COLOURS)]


def _policies(report: EvalReport) -> list[str]:
    seen: list[str] = []
    for d in report.datasets:
        seen += [p.policy for p in d.interactive if p.policy not in seen]
    return seen


def iou_curves(report: EvalReport) -> bytes | None:
    """Mean IoU after k clicks, one panel per dataset, one line per policy; target dashed."""
    datasets = [d for d in report.datasets if d.interactive]
    if not datasets:
        return None
    names = _policies(report)
    fig, axes = _figure(len(datasets))
    for ax, d in zip(axes, datasets, strict=True):
        for p in d.interactive:
            ks = np.arange(1, len(p.miou) + 1)
            ax.plot(ks, 100 * np.asarray(p.miou), marker="o", markersize=3, label=p.policy,
                    color=_colour(names, p.policy))
        ax.axhline(100 * d.target_iou, color="gray", linestyle="--", linewidth=1)
        ax.set(title=f"{d.name} ({d.n_objects} objects)", xlabel="clicks", ylabel="mean IoU (%)", ylim=(0, 102))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    return _png(fig)


def noc_bars(report: EvalReport) -> bytes | None:
    """NoC at each threshold: grouped bars (datasets x policies), one panel per threshold."""
    keys = sorted({k for d in report.datasets for p in d.interactive for k in p.noc})
    if not keys:
        return None
    names = _policies(report)
    fig, axes = _figure(len(keys), height=3.8)
    width = 0.8 / max(len(names), 1)
    for ax, key in zip(axes, keys, strict=True):
        datasets = [d for d in report.datasets if any(key in p.noc for p in d.interactive)]
        top = 1.0
        for j, name in enumerate(names):
            vals = []
            for d in datasets:
                match = [p.noc[key] for p in d.interactive if p.policy == name and key in p.noc]
                vals.append(match[0] if match else np.nan)
            xs = np.arange(len(datasets)) + (j - (len(names) - 1) / 2) * width
            bars = ax.bar(xs, vals, width=width, label=name, color=_colour(names, name))
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
            top = max(top, np.nanmax(vals) if not np.all(np.isnan(vals)) else 0)
        ax.set_xticks(np.arange(len(datasets)), [d.name for d in datasets], rotation=15, fontsize=8)
        ax.set(title=f"NoC@{key} (lower is better)", ylabel="clicks", ylim=(0, top * 1.15))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(names), 6), fontsize=8, frameon=False)
    return _png(fig, bottom=0.1)


def granularity_sweep(report: EvalReport) -> bytes | None:
    """Oracle sweep: mean IoU after the first click against g, one line per dataset."""
    series = [(d.name, p.iou1_by_g) for d in report.datasets for p in d.interactive if p.iou1_by_g]
    if not series:
        return None
    fig, (ax,) = _figure(1, width=5.5)
    for i, (name, by_g) in enumerate(series):
        gs = [float(g) for g in by_g]
        ax.plot(gs, [100 * v for v in by_g.values()], marker="o", label=name, color=COLOURS[i % len(COLOURS)])
    ax.set(title="granularity sweep: IoU after 1 click", xlabel="granularity g", ylabel="mean IoU (%)", ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def chosen_granularity(report: EvalReport) -> bytes | None:
    """Histogram of the g chosen by the oracle, per dataset (fraction of objects)."""
    series = [(d.name, p.chosen_g) for d in report.datasets for p in d.interactive if p.chosen_g]
    if not series:
        return None
    gs = sorted({float(g) for _, hist in series for g in hist})
    fig, (ax,) = _figure(1, width=5.5)
    width = 0.08 / len(series)
    for i, (name, hist) in enumerate(series):
        total = sum(hist.values())
        counts = {float(g): c for g, c in hist.items()}
        xs = np.asarray(gs) + (i - (len(series) - 1) / 2) * width
        ax.bar(xs, [100 * counts.get(g, 0) / total for g in gs], width=width, label=name,
               color=COLOURS[i % len(COLOURS)])
    ax.set(title="g chosen by the oracle", xlabel="granularity g", ylabel="objects (%)")
    ax.set_xticks(gs, [f"{g:g}" for g in gs])
    ax.legend(fontsize=8)
    return _png(fig)


def ar_by_granularity(report: EvalReport) -> bytes | None:
    """AR@1000 of each single g (points) and of the pooled detections (dashed), per dataset."""
    datasets = [(d.name, whole) for d in report.datasets if (whole := d.whole_image) is not None]
    if not datasets:
        return None
    fig, (ax,) = _figure(1, width=5.5)
    for i, (name, whole) in enumerate(datasets):
        colour = COLOURS[i % len(COLOURS)]
        by_g = whole.ar_by_g
        ax.plot([float(g) for g in by_g], [100 * v for v in by_g.values()], marker="o", color=colour, label=name)
        top = str(max(int(k) for k in whole.ar))
        ax.axhline(100 * whole.ar[top], color=colour, linestyle="--", linewidth=1,
                   label=f"{name}, all g pooled (AR@{top})")
    ax.set(title="whole-image AR by granularity", xlabel="granularity g", ylabel="AR@1000 (%)", ylim=(0, 105))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


PLOTS: dict[str, Callable[[EvalReport], bytes | None]] = {
    "iou_vs_clicks": iou_curves,
    "noc": noc_bars,
    "granularity_sweep": granularity_sweep,
    "chosen_granularity": chosen_granularity,
    "ar_by_granularity": ar_by_granularity,
}


def render_plots(report: EvalReport) -> dict[str, bytes]:
    """Every plot that has data, ``{name: PNG bytes}`` in a stable order."""
    out = {}
    for name, fn in PLOTS.items():
        png = fn(report)
        if png is not None:
            out[name] = png
    return out
