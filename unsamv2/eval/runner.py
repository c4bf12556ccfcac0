"""``evaluate``: the whole protocol on one or more datasets, returning an :class:`EvalReport`.

Per image: every predictor involved is embedded once (``set_image``), then every object runs
every configured policy (interactive), then the mask generator, if any, produces whole-image
masks at all g (AR). A flow or CLI only has to build the predictors and datasets and call this.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from unsamv2.errors import InputError
from unsamv2.eval.aggregate import dataset_report, object_row
from unsamv2.eval.datasets import EvalDataset, EvalSample, target_iou_for
from unsamv2.eval.gallery import gallery_item
from unsamv2.eval.policies import (
    PAPER_GRANULARITIES,
    LoopSettings,
    ObjectRun,
    OracleGranularity,
    Policy,
    parse_policy,
)
from unsamv2.eval.report import EvalReport, GalleryItem
from unsamv2.eval.whole_image import DEFAULT_MAX_DETS, WholeImageSettings, pool_detections


@dataclass(frozen=True)
class EvalConfig:
    """Protocol settings (all recorded in the report; a change makes runs incomparable).

    ``target_iou`` None means the dataset kind's (0.90 objects, 0.85 parts); thresholds above a
    dataset's target are skipped for it. ``granularities`` is both the oracle's sweep and the
    whole-image pool. ``whole_image_settings``: the generator's grid, m2m pass, thresholds, NMS
    (default: the official protocol, 64x64 with m2m); ``sam2_thresholds``: the logit thresholds
    of the SAM-2 baselines (single mask, best of 3). :meth:`as_run` replaces both with what the
    generator and baseline passed to :func:`evaluate` report, so the report records what ran.
    """

    policies: tuple[str, ...] = ("oracle",)
    granularities: tuple[float, ...] = PAPER_GRANULARITIES
    max_clicks: int = 20
    thresholds: tuple[float, ...] = (0.80, 0.85, 0.90)
    target_iou: float | None = None
    mask_feedback: bool = True
    whole_image: bool = True
    max_dets: tuple[int, ...] = DEFAULT_MAX_DETS
    gallery_size: int = 4  # overlays per dataset
    gallery_granularities: tuple[float, ...] = (0.1, 0.4, 0.7, 1.0)
    whole_image_settings: WholeImageSettings | None = field(default_factory=WholeImageSettings)
    sam2_thresholds: tuple[float, float] | None = (-1.0, 0.0)

    def __post_init__(self) -> None:
        for p in self.policies:
            parse_policy(p)
        if not self.granularities or not all(0.0 <= g <= 1.0 for g in self.granularities):
            raise InputError(f"granularities must be values in [0, 1], got {self.granularities}.")
        if self.max_clicks < 1:
            raise InputError(f"max_clicks must be at least 1, got {self.max_clicks}.")

    def make_policies(self) -> list[Policy]:
        """The policy objects, the oracle sweeping ``granularities``."""
        out: list[Policy] = []
        for spec in self.policies:
            p = parse_policy(spec)
            out.append(OracleGranularity(tuple(self.granularities)) if isinstance(p, OracleGranularity) else p)
        return out

    def as_run(self, generator: Any = None, baseline: Any = None) -> EvalConfig:
        """The config as it runs with these objects: ``whole_image_settings`` from the
        generator's ``settings()`` (kept when it reports none; None when no whole-image AR is
        computed), ``sam2_thresholds`` from the baseline's ``single_threshold`` /
        ``multimask_threshold`` (kept when it has none; None when no ``sam2-*`` policy runs)."""
        whole = None
        if generator is not None and self.whole_image:
            whole = WholeImageSettings.of(generator) or self.whole_image_settings
        sam2 = None
        if any(p.needs == "multimask" for p in self.make_policies()):
            single, multi = (getattr(baseline, k, None) for k in ("single_threshold", "multimask_threshold"))
            sam2 = self.sam2_thresholds if single is None or multi is None else (float(single), float(multi))
        return replace(self, whole_image_settings=whole, sam2_thresholds=sam2)

    def protocol_hash(self) -> str:
        """A short hash of every setting that defines comparability (whole-image ones included)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def code_version() -> str:
    """``unsamv2`` version plus the git commit of the source tree when there is one."""
    from unsamv2 import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}" if sha else __version__


def file_sha256(uri: str) -> str:
    """SHA-256 hex digest of a local or s3:// file, streamed."""
    from unsamv2.data import storage

    h = hashlib.sha256()
    with storage.open_uri(uri, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not enabled, leave=False)


@dataclass
class _Accumulator:
    """What one dataset's evaluation collects while iterating its images."""

    runs: dict[str, list[ObjectRun]]
    seconds: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)
    gallery: list[GalleryItem] = field(default_factory=list)
    gt_images: list[dict[str, Any]] = field(default_factory=list)
    gt_anns: list[dict[str, Any]] = field(default_factory=list)
    dets: list[dict[str, Any]] = field(default_factory=list)
    whole_seconds: float = 0.0


class _Evaluation:
    """Runs one dataset; kept small by delegating aggregation to ``aggregate.py``."""

    def __init__(self, config: EvalConfig, predictor: Any, baseline: Any, generator: Any) -> None:
        self.config, self.predictor, self.baseline, self.generator = config, predictor, baseline, generator
        self.policies = config.make_policies()
        # Overlays need the granularity predictor, embedded only when some policy uses it.
        self._gallery = predictor is not None and any(p.needs == "granularity" for p in self.policies)
        self._embedded: set[int] = set()  # ids of the predictors holding the current image
        for p in self.policies:
            if self._predictor_for(p) is None:
                what = "a granularity predictor" if p.needs == "granularity" else "a SAM-2 baseline predictor"
                raise InputError(f"policy {p.name} needs {what}; pass it to evaluate() or drop the policy.")

    def _predictor_for(self, policy: Policy) -> Any:
        return self.predictor if policy.needs == "granularity" else self.multimask_predictor()

    def multimask_predictor(self) -> Any:
        """What the ``sam2-*`` policies call: the baseline, else a predictor with ``predict_multimask``."""
        return self.baseline if self.baseline is not None else (
            self.predictor if hasattr(self.predictor, "predict_multimask") else None)

    def run(self, dataset: EvalDataset, progress: bool,
            on_image: Callable[[], None] | None = None) -> tuple[Any, list[dict[str, Any]], list[Any]]:
        """Evaluate one dataset; returns its DatasetReport, per-object rows and gallery items;
        ``on_image()`` after each image."""
        cfg = self.config
        target = cfg.target_iou if cfg.target_iou is not None else target_iou_for(dataset.kind)
        settings = LoopSettings(target_iou=target, max_clicks=cfg.max_clicks, mask_feedback=cfg.mask_feedback)
        acc = _Accumulator({p.name: [] for p in self.policies}, {p.name: 0.0 for p in self.policies})
        with _progress(len(dataset), dataset.name, progress) as bar:
            for sample in dataset:
                self._embed(sample)
                self._interactive(dataset.name, sample, settings, acc)
                self._whole_image(sample, acc)
                bar.update(1)
                if on_image is not None:
                    on_image()
        whole = None
        if self.generator is not None and cfg.whole_image:
            whole = ({"images": acc.gt_images, "annotations": acc.gt_anns}, acc.dets, acc.whole_seconds)
        report = dataset_report(dataset, cfg, target, len(acc.gt_images), acc.runs, acc.seconds, whole)
        return report, acc.rows, acc.gallery

    def _interactive(self, name: str, sample: EvalSample, settings: LoopSettings, acc: _Accumulator) -> None:
        """Every policy on every object of the (embedded) sample, plus its gallery overlay."""
        for k, gt in enumerate(sample.masks):
            for policy in self.policies:
                t0 = time.perf_counter()
                run = policy.run(self._predictor_for(policy), gt, sample.ignore, settings)
                acc.seconds[policy.name] += time.perf_counter() - t0
                acc.runs[policy.name].append(run)
                acc.rows.append(object_row(name, sample, k, run, settings.target_iou))
            if k == 0 and self._gallery and len(acc.gallery) < self.config.gallery_size:
                acc.gallery.append(gallery_item(self.predictor, name, sample, k, self.config.gallery_granularities))

    def _whole_image(self, sample: EvalSample, acc: _Accumulator) -> None:
        """Pooled whole-image detections of the sample (if a generator is given) and its ground truth."""
        if self.generator is not None and self.config.whole_image:
            t0 = time.perf_counter()
            gs = list(self.config.granularities)
            if getattr(self.generator, "predictor", None) is self.predictor and id(self.predictor) in self._embedded:
                # the generator shares the predictor that already holds this image's embedding
                records = [r for g in gs for r in self.generator.generate_for_set_image(float(g))]
            else:
                records = self.generator.generate(sample.image, granularity=gs)
            acc.dets += pool_detections(sample.image_id, records, sample.height, sample.width)
            acc.whole_seconds += time.perf_counter() - t0
        acc.gt_images.append({"id": sample.image_id, "height": sample.height, "width": sample.width})
        acc.gt_anns += sample.annotations

    def _embed(self, sample: EvalSample) -> None:
        """Embed the image once in every distinct predictor that some policy uses."""
        self._embedded = set()
        for p in self.policies:
            pred = self._predictor_for(p)
            if id(pred) not in self._embedded:
                self._embedded.add(id(pred))
                pred.set_image(sample.image)


def evaluate(
    predictor: Any,
    datasets: EvalDataset | Sequence[EvalDataset],
    config: EvalConfig | None = None,
    *,
    baseline: Any = None,
    generator: Any = None,
    model: str = "",
    checkpoint: str = "",
    progress: bool = True,
    run_id: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Run the evaluation protocol and return the report.

    ``predictor``: a :class:`~unsamv2.eval.protocols.GranularityPredictor` (None if only SAM-2
    policies run); ``baseline``: a :class:`~unsamv2.eval.protocols.MultimaskPredictor` for the
    ``sam2-*`` policies (default: ``predictor`` if it has ``predict_multimask``); ``generator``: a
    :class:`~unsamv2.eval.protocols.MaskGenerator` for whole-image AR (skipped when None);
    ``checkpoint``: URI of the evaluated weights, hashed into the report; ``on_progress(done,
    total)``: images evaluated so far over all datasets, after each image (e.g. a Prefect progress
    artifact).
    """
    config = config or EvalConfig()
    if not isinstance(datasets, Sequence):
        datasets = [datasets]
    runner = _Evaluation(config, predictor, baseline, generator)
    config = config.as_run(generator, runner.multimask_predictor())
    created = datetime.now(timezone.utc)
    reports, rows, gallery = [], [], []
    total, done = sum(len(ds) for ds in datasets), [0]

    def on_image() -> None:
        done[0] += 1
        if on_progress is not None:
            on_progress(done[0], total)

    for ds in datasets:
        rep, ds_rows, ds_gallery = runner.run(ds, progress, on_image)
        reports.append(rep)
        rows += ds_rows
        gallery += ds_gallery
    protocol = json.loads(json.dumps({**asdict(config), "protocol_hash": config.protocol_hash()}))
    return EvalReport(
        run_id=run_id or f"{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        created_at=created.isoformat(timespec="seconds"),
        model=model, checkpoint=checkpoint, checkpoint_sha256=file_sha256(checkpoint) if checkpoint else "",
        code_version=code_version(), protocol=protocol, datasets=reports, gallery=gallery, object_rows=rows)
