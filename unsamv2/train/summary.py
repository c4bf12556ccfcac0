"""What a finished training run leaves next to its checkpoints (``summary.json``, ``loss.png``) and\nthe Markdown report of a training run with its evaluation (the ``mine-and-train`` summary)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

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


def report_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """The key evaluation numbers (1-IoU, NoC80/85/90, AR1000) as ``{"metric", "value"}`` rows."""
    return [{"metric": k, "value": round(v, 4)} for k, v in sorted(evaluation["metrics"].items())
            if k.endswith(("/1-IoU", "/NoC80", "/NoC85", "/NoC90", "/AR1000"))]


def training_report_markdown(training: dict[str, Any], evaluation: dict[str, Any],
                             title: str = "mine-and-train") -> str:
    """Markdown of a training run (its ``TrainResult`` as a dict) and the evaluation of its
    checkpoint (:meth:`unsamv2.eval.result.EvalResult.to_dict` of the evaluation): checkpoint, loss,
    throughput, held-out IoU, the key metrics, the granularity probe and the regression verdict."""
    val = training.get("val") or {}
    lines = [
        f"# {title}", "",
        f"Checkpoint: `{training['checkpoint_uri']}` (step {training['steps']}, {training['world_size']} worker(s), "
        f"{training['trainable_parameters']:,} trainable parameters)", "",
        f"Loss: {training['first_loss']} → {training['final_loss']}; {training['masks_per_second']} masks/s; "
        f"held-out IoU after 1 click {val.get('val_iou_click1', 'n/a')}", "",
        f"Report: `{evaluation['files']['html']}` (also `report.md`, `report.json`)", "",
        "| metric | value |", "|---|---|", *[f"| {r['metric']} | {r['value']} |" for r in report_rows(evaluation)],
    ]
    probe = evaluation.get("probe")
    if probe:
        lines += ["", f"Granularity probe (IoU after 1 click): ground-truth g {probe['gt_g']:.3f}, best fixed "
                      f"g={probe['best_fixed_g']:g} {probe['best_fixed']:.3f}."]
    if evaluation.get("verdict"):
        lines += ["", f"Regression check: {evaluation['verdict']}"]
    return "\n".join(lines)
