"""The evaluation report: typed, JSON round-trippable, rendered to Markdown (HTML: ``html.py``).

Units: IoU and AR are fractions in [0, 1] in the JSON and in :meth:`EvalReport.metrics`; the
Markdown and HTML show them in percent, like the paper. NoC is a number of clicks.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1
MIOU_KS = (3, 5)  # mIoU@k values exported as flat metrics (besides 1-IoU = mIoU@1)


@dataclass(frozen=True)
class PolicyMetrics:
    """Interactive metrics of one policy on one dataset.

    ``noc`` / ``nof``: keyed by threshold in percent ("80", "85", "90"); ``miou``: mean IoU after
    k = 1..max_clicks clicks (padded curves); ``chosen_g``: oracle only, objects per chosen g
    (keys like "0.5"); ``iou1_by_g``: oracle only, mean IoU after click 1 at each g (the sweep).
    """

    policy: str
    n_objects: int
    noc: dict[str, float]
    nof: dict[str, int]
    iou1: float
    miou: list[float]
    seconds_per_object: float
    predictions_per_object: float
    chosen_g: dict[str, int] = field(default_factory=dict)
    iou1_by_g: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WholeImageMetrics:
    """Whole-image AR of the pooled detections (``ar``, keyed by max detections) and per g."""

    ar: dict[str, float]
    ar_by_g: dict[str, float]
    n_images: int
    n_ground_truth: int
    n_detections: int
    seconds_per_image: float


@dataclass(frozen=True)
class DatasetReport:
    """All results on one dataset."""

    name: str
    kind: str
    version: str
    n_images: int
    n_objects: int
    target_iou: float
    thresholds: list[float]
    interactive: list[PolicyMetrics]
    whole_image: WholeImageMetrics | None = None

    def policy(self, name: str) -> PolicyMetrics:
        """The metrics of policy ``name`` (KeyError if it was not run)."""
        for p in self.interactive:
            if p.policy == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True)
class GalleryItem:
    """One qualitative overlay (PNG bytes): an object, its first click, masks at several g."""

    dataset: str
    image_id: int
    object_id: int
    caption: str
    png: bytes = field(repr=False)


@dataclass(frozen=True)
class EvalReport:
    """A full evaluation run: provenance, protocol settings, per-dataset metrics, gallery.

    ``object_rows`` (per-object results) are not part of the JSON; ``write_report`` stores them
    as Parquet next to it.
    """

    run_id: str
    created_at: str  # ISO 8601, UTC
    model: str
    checkpoint: str
    checkpoint_sha256: str
    code_version: str
    protocol: dict[str, Any]
    datasets: list[DatasetReport]
    gallery: list[GalleryItem] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    object_rows: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    def dataset(self, name: str) -> DatasetReport:
        """The results on dataset ``name`` (KeyError if it was not evaluated)."""
        for d in self.datasets:
            if d.name == name:
                return d
        raise KeyError(name)

    def metrics(self) -> dict[tuple[str, str], float]:
        """Flat ``{(dataset, metric): value}``: "<policy>/NoC90", "<policy>/NoF90",
        "<policy>/1-IoU", "<policy>/mIoU@5", "<policy>/sec_per_object", "whole/AR1000",
        "whole/AR1000@g=0.5", "whole/sec_per_image" (IoU and AR as fractions)."""
        out: dict[tuple[str, str], float] = {}
        for d in self.datasets:
            for p in d.interactive:
                for key, v in p.noc.items():
                    out[(d.name, f"{p.policy}/NoC{key}")] = float(v)
                for key, v in p.nof.items():
                    out[(d.name, f"{p.policy}/NoF{key}")] = float(v)
                out[(d.name, f"{p.policy}/1-IoU")] = float(p.iou1)
                for k in MIOU_KS:
                    if k <= len(p.miou):
                        out[(d.name, f"{p.policy}/mIoU@{k}")] = float(p.miou[k - 1])
                out[(d.name, f"{p.policy}/sec_per_object")] = float(p.seconds_per_object)
            if d.whole_image is not None:
                for ar_key, v in d.whole_image.ar.items():
                    out[(d.name, f"whole/AR{ar_key}")] = float(v)
                for g, v in d.whole_image.ar_by_g.items():
                    out[(d.name, f"whole/AR1000@g={g}")] = float(v)
                out[(d.name, "whole/sec_per_image")] = float(d.whole_image.seconds_per_image)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (gallery PNGs base64-encoded; no per-object rows)."""
        d = asdict(self)
        d.pop("object_rows")
        d["gallery"] = [{**{k: v for k, v in asdict(g).items() if k != "png"},
                         "png_base64": base64.b64encode(g.png).decode("ascii")} for g in self.gallery]
        return d

    def to_json(self, indent: int | None = 1) -> str:
        """The report as JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalReport:
        """Inverse of :meth:`to_dict`."""
        from unsamv2.errors import SchemaError

        if int(d.get("schema_version", -1)) != SCHEMA_VERSION:
            raise SchemaError(f"report schema version {d.get('schema_version')} is not {SCHEMA_VERSION}; "
                              "re-run the evaluation with this version of unsamv2.")
        datasets = []
        for ds in d["datasets"]:
            wi = ds.get("whole_image")
            datasets.append(DatasetReport(**{**ds, "interactive": [PolicyMetrics(**p) for p in ds["interactive"]],
                                             "whole_image": WholeImageMetrics(**wi) if wi else None}))
        gallery = [GalleryItem(g["dataset"], g["image_id"], g["object_id"], g["caption"],
                               base64.b64decode(g["png_base64"])) for g in d.get("gallery", [])]
        fields_ = {k: v for k, v in d.items() if k not in ("datasets", "gallery")}
        return cls(**fields_, datasets=datasets, gallery=gallery)

    @classmethod
    def from_json(cls, text: str) -> EvalReport:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def _pct(v: float | None) -> str:
    return "–" if v is None or v != v else f"{100 * v:.1f}"


def _num(v: float | None) -> str:
    return "–" if v is None or v != v else f"{v:.2f}"


def interactive_table(d: DatasetReport) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a dataset's interactive table (shared by Markdown and HTML)."""
    keys = [f"{round(t * 100):d}" for t in d.thresholds]
    target = f"{round(d.target_iou * 100):d}"
    header = ["policy", *[f"NoC{k}" for k in keys], f"NoF{target}", "1-IoU (%)", "objects", "s/object"]
    rows = [[p.policy, *[_num(p.noc.get(k)) for k in keys], str(p.nof.get(target, "–")), _pct(p.iou1),
             str(p.n_objects), f"{p.seconds_per_object:.3f}"] for p in d.interactive]
    return header, rows


def whole_image_table(d: DatasetReport) -> tuple[list[str], list[list[str]]]:
    """Header and the single row of a dataset's whole-image AR table."""
    wi = d.whole_image
    if wi is None:
        return [], []
    ks = list(wi.ar)
    header = [f"AR@{k} (%)" for k in ks] + ["images", "ground truth", "detections", "s/image"]
    row = [_pct(wi.ar[k]) for k in ks] + [str(wi.n_images), str(wi.n_ground_truth), str(wi.n_detections),
                                          f"{wi.seconds_per_image:.3f}"]
    return header, [row]


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not header:
        return []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def settings_summary(protocol: dict[str, Any]) -> str:
    """The whole-image generator and SAM-2 baseline settings of a report's protocol, one line
    (empty when neither ran): grid, m2m, thresholds, NMS, batch; the baselines' logit thresholds."""
    from dataclasses import fields

    from unsamv2.eval.whole_image import WholeImageSettings

    parts = []
    whole = protocol.get("whole_image_settings")
    if whole:
        known = {f.name for f in fields(WholeImageSettings)}
        settings = WholeImageSettings(**{k: v for k, v in whole.items() if k in known})
        parts.append(f"whole image: {settings.describe()}")
    sam2 = protocol.get("sam2_thresholds")
    if sam2:
        parts.append(f"SAM-2 baselines: logits > {sam2[0]:g} (single mask), > {sam2[1]:g} (best of 3)")
    return "; ".join(parts)


def to_markdown(report: EvalReport, verdict_markdown: str | None = None) -> str:
    """A Markdown summary: provenance, one interactive and one AR table per dataset, verdict."""
    lines = [f"# Evaluation {report.run_id}", "",
             f"- model: `{report.model}`  checkpoint: `{report.checkpoint or '–'}` "
             f"(sha256 `{report.checkpoint_sha256[:12] or '–'}`)",
             f"- code: `{report.code_version}`  created: {report.created_at}",
             f"- protocol: max {report.protocol.get('max_clicks')} clicks, mask feedback "
             f"{report.protocol.get('mask_feedback')}, g sweep {report.protocol.get('granularities')}, "
             f"hash `{report.protocol.get('protocol_hash')}`"]
    summary = settings_summary(report.protocol)
    lines += [f"- {summary}", ""] if summary else [""]
    if verdict_markdown:
        lines += [verdict_markdown, ""]
    for d in report.datasets:
        lines += [f"## {d.name} ({d.kind}, target IoU {d.target_iou:.2f}, data `{d.version}`)", "",
                  f"{d.n_images} images, {d.n_objects} objects.", ""]
        lines += _md_table(*interactive_table(d)) + [""]
        lines += _md_table(*whole_image_table(d))
        lines += [""]
    return "\n".join(lines).rstrip() + "\n"
