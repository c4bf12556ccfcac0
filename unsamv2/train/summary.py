"""What a finished training run leaves next to its checkpoints: ``summary.json`` and ``loss.png``."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np

from unsamv2.data import storage

if TYPE_CHECKING:
    from unsamv2.train.recipe import TrainResult


def loss_curve_png(losses: list[float], title: str = "training loss") -> bytes:
    """A PNG of the per-step loss and its running mean (window 1/20 of the run, at least 1)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    values = np.asarray(losses, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    steps = np.arange(1, values.size + 1)
    ax.plot(steps, values, color="#9ecae1", linewidth=0.8, label="per step")
    window = max(1, values.size // 20)
    if values.size >= window and window > 1:
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, color="#08519c", linewidth=1.6, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (sum over 4 clicks)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_summary(result: TrainResult) -> dict[str, str]:
    """Write ``summary.json`` and ``loss.png`` under the run's output; returns their URIs."""
    out = {"summary": storage.join(result.output_uri, "summary.json"),
           "loss_curve": storage.join(result.output_uri, "loss.png")}
    storage.write_text(out["summary"], json.dumps(asdict(result), indent=1))
    if result.losses:
        storage.write_bytes(out["loss_curve"], loss_curve_png(result.losses))
    return out


def read_summary(output_uri: str) -> dict:
    """The ``summary.json`` of a finished run (a dict with :class:`TrainResult`'s fields)."""
    return json.loads(storage.read_text(storage.join(output_uri, "summary.json")))
