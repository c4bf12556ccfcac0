"""Evaluate a training checkpoint with the evaluation library and write its report.

The held-out benchmark is the procedural scenes of a seed that training never saw (objects and
parts, ``scenes:<n>:<seed>:<size>``), plus any COCO-format datasets the caller names; the
protocol, metrics and report files are :mod:`unsamv2.eval`'s (:func:`unsamv2.eval.evaluate`,
:func:`unsamv2.eval.write_report`, optional history and regression check). Next to the report,
``probe.json`` holds the one-click granularity probe (:mod:`unsamv2.train.probe`). The result is
an :class:`~unsamv2.eval.result.EvalResult` that says whether the run regressed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from unsamv2.data import storage
from unsamv2.errors import InputError

if TYPE_CHECKING:  # loaded when used
    from unsamv2.eval.result import EvalResult

DEFAULT_SCENES = "scenes:8:1000:256"
DEFAULT_POLICIES = ("oracle", "g=1")


@dataclass(frozen=True)
class EvalJob:
    """The evaluation use case's one typed job: what to evaluate a checkpoint on and how, validated
    once. ``unsamv2 eval``, the ``nightly-eval`` flow and ``mine-and-train``'s evaluation build it;
    :func:`run_eval` runs it (here, or as a Ray task holding ``gpus`` GPUs at ``ray_address``).

    ``scenes``: the procedural benchmark ``scenes:<n>:<seed>:<size>`` (None: none); ``datasets``:
    COCO annotation URIs; ``policies``: ``oracle``, ``g=<v>``, ``sam2-single``, ``sam2-best3``;
    whole-image AR with the official protocol when ``whole_image`` (grid ``points_per_side``, the
    ``m2m`` second pass); ``device``: cpu, cuda or auto (cuda when ``gpus`` > 0 and cpu was left).
    """

    scenes: str | None = DEFAULT_SCENES
    datasets: tuple[str, ...] = ()
    policies: tuple[str, ...] = DEFAULT_POLICIES
    whole_image: bool = False
    points_per_side: int = 64
    m2m: bool = True
    max_clicks: int = 20
    max_objects: int | None = None
    probe: bool = True
    device: str = "cpu"
    baseline_checkpoint: str | None = None
    ray_address: str | None = None
    gpus: float = 0.0
    history_uri: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        from unsamv2.eval.datasets import parse_scenes
        from unsamv2.eval.policies import parse_policy

        scenes = None if (self.scenes or "").lower() in ("", "none") else self.scenes
        object.__setattr__(self, "scenes", scenes)
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "policies", tuple(self.policies or DEFAULT_POLICIES))
        checks = [(self.points_per_side >= 1, f"points_per_side must be at least 1, got {self.points_per_side}"),
                  (1 <= self.max_clicks <= 100, f"max_clicks must lie in [1, 100], got {self.max_clicks}"),
                  (self.gpus >= 0, f"gpus must be >= 0, got {self.gpus}"),
                  (self.max_objects is None or self.max_objects >= 1, f"max_objects must be >= 1, got {self.max_objects}"),
                  (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:"),
                   f"device must be cpu, cuda or auto, got {self.device!r}")]
        for ok, message in checks:
            if not ok:
                raise InputError(message + "; fix the evaluation settings.")
        if scenes:
            parse_scenes(scenes)
        for policy in self.policies:
            parse_policy(policy)

    def options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`evaluate_checkpoint` (everything but where it runs)."""
        device = "cuda" if self.gpus > 0 and self.device == "cpu" else self.device
        return dict(scenes=self.scenes, datasets=list(self.datasets), policies=list(self.policies),
                    whole_image=self.whole_image, points_per_side=self.points_per_side, m2m=self.m2m,
                    max_clicks=self.max_clicks, max_objects=self.max_objects, probe=self.probe,
                    history_uri=self.history_uri, device=device, baseline_checkpoint=self.baseline_checkpoint)


def run_eval(job: EvalJob, checkpoint_uri: str, out_uri: str, *, progress: bool = False,
             on_progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Run ``job`` on the checkpoint folder: in this process, or as a Ray task when
    ``job.ray_address`` is set; returns :func:`evaluate_checkpoint`'s result (``.regressed``
    says whether the run regressed against the job's history)."""
    if job.ray_address:
        from unsamv2.backends.remote import call_on_ray

        return call_on_ray(evaluate_checkpoint, checkpoint_uri, out_uri, address=job.ray_address,
                           num_gpus=job.gpus, **job.options())
    return evaluate_checkpoint(checkpoint_uri, out_uri, progress=progress, on_progress=on_progress, **job.options())


def benchmark_datasets(scenes: str | None, datasets: Sequence[str], max_objects: int | None = None) -> list[Any]:
    """The evaluation datasets: ``scenes`` ("scenes:<n>:<seed>:<size>") as an object and a part
    dataset (at most ``max_objects`` objects per image), plus one COCO dataset per annotations
    URI in ``datasets``."""
    from unsamv2.eval.datasets import CocoDataset, DatasetSpec, parse_scenes

    out: list[Any] = []
    if scenes:
        parse_scenes(scenes)
        out.append(DatasetSpec("scenes-objects", scenes, kind="object", max_objects=max_objects).open())
        out.append(DatasetSpec("scenes-parts", scenes, kind="part", max_objects=max_objects).open())
    for uri in datasets:
        out.append(CocoDataset(uri))
    if not out:
        raise InputError("nothing to evaluate on: give a scenes benchmark or at least one COCO dataset.")
    return out


def evaluate_checkpoint(checkpoint_uri: str, out_uri: str, *, scenes: str | None = EvalJob.scenes,
                        datasets: Sequence[str] = EvalJob.datasets, policies: Sequence[str] = EvalJob.policies,
                        whole_image: bool = EvalJob.whole_image, points_per_side: int = EvalJob.points_per_side,
                        m2m: bool = EvalJob.m2m, max_clicks: int = EvalJob.max_clicks,
                        max_objects: int | None = EvalJob.max_objects, probe: bool = EvalJob.probe,
                        history_uri: str | None = None, device: str = EvalJob.device, progress: bool = False,
                        model_name: str = "", baseline_checkpoint: str | None = EvalJob.baseline_checkpoint,
                        on_progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Evaluate the checkpoint folder ``checkpoint_uri`` (from :func:`unsamv2.train.train`).

    Writes the evaluation report (JSON, Markdown, HTML, plots) and ``probe.json`` under
    ``out_uri`` (``max_objects``: per image and dataset; ``probe``: also run the granularity
    probe on the scenes); with ``history_uri``, compares with the history there and appends the run.
    The ``sam2-single`` / ``sam2-best3`` policies run plain SAM-2 built from the checkpoint's model
    config and ``baseline_checkpoint`` (default: the base checkpoint the adapter was trained on).
    ``on_progress(done, total)``: evaluated images so far (see :func:`unsamv2.eval.evaluate`).
    Whole-image AR follows the official protocol by default (``points_per_side`` 64, the ``m2m``
    second pass); both are recorded in the report's protocol hash.
    Returns an :class:`~unsamv2.eval.result.EvalResult` (``run_id``, ``files`` {kind: uri},
    ``metrics`` {"<dataset>/<metric>": value}, ``probe``, ``verdict``, ``regressed``).
    """
    from unsamv2.eval import EvalConfig, evaluate
    from unsamv2.eval.result import record_report
    from unsamv2.model import UnSAMv2MaskGenerator, UnSAMv2Predictor
    from unsamv2.train.checkpoint import META_FILE, load_trained_model

    device = resolve_device(device)
    config = EvalConfig(policies=tuple(policies), whole_image=whole_image, max_clicks=max_clicks)
    model = load_trained_model(checkpoint_uri, device=device)
    predictor = UnSAMv2Predictor(model)
    generator = (UnSAMv2MaskGenerator(model, points_per_side=points_per_side, predictor=predictor, use_m2m=m2m)
                 if whole_image else None)
    meta = json.loads(storage.read_text(storage.join(checkpoint_uri, META_FILE)))
    if meta["config"].get("objective") == "sam2" and baseline_checkpoint is None:
        baseline_checkpoint = _weights_file(checkpoint_uri)  # a pretrained base is its own baseline
    baseline = _baseline(config, meta["config"], baseline_checkpoint, device)
    report = evaluate(predictor, benchmark_datasets(scenes, datasets, max_objects), config, baseline=baseline,
                      generator=generator, model=model_name or _model_name(meta),
                      checkpoint=_weights_file(checkpoint_uri), progress=progress, on_progress=on_progress)
    result = record_report(report, out_uri, history_uri)
    return result.with_probe(*_probe(predictor, scenes, out_uri)) if scenes and probe else result


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when CUDA is available, else ``cpu``; other names unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _weights_file(checkpoint_uri: str) -> str:
    """The checkpoint's full weights (full mode) or its adapter file: what the report hashes."""
    from unsamv2.train.checkpoint import ADAPTER_FILE, MODEL_FILE, SAM2_FILE

    for name in (MODEL_FILE, SAM2_FILE):
        weights = storage.join(checkpoint_uri, name)
        if storage.exists(weights):
            return weights
    return storage.join(checkpoint_uri, ADAPTER_FILE)


def _baseline(config: Any, trained: dict[str, Any], baseline_checkpoint: str | None, device: str) -> Any:
    """Plain SAM-2 for the ``sam2-*`` policies (None when no policy needs it); ``trained`` is the
    checkpoint's training config (its ``meta.json``)."""
    if all(p.needs == "granularity" for p in config.make_policies()):
        return None
    from unsamv2.eval.baselines import Sam2Baseline
    from unsamv2.model import build_sam2

    weights = baseline_checkpoint or trained.get("base_checkpoint")
    return Sam2Baseline.from_model(build_sam2(trained["model_config"], checkpoint=weights, device=device).eval())


def _probe(predictor: Any, scenes: str, out_uri: str) -> tuple[dict[str, Any], str]:
    """The one-click granularity probe on the scenes benchmark, written to ``probe.json``;
    returns the probe and that file's URI."""
    from unsamv2.eval.datasets import parse_scenes
    from unsamv2.train.probe import granularity_probe

    n, seed, size = parse_scenes(scenes)
    result = asdict(granularity_probe(predictor, scenes=n, seed=seed, size=size))
    uri = storage.join(out_uri, "probe.json")
    storage.write_text(uri, json.dumps(result, indent=1))
    return result, uri


def _model_name(meta: dict[str, Any]) -> str:
    """A readable model name from a checkpoint's ``meta.json``."""
    if meta.get("shipped"):
        return "unsamv2-base-shipped"
    return f"unsamv2-{meta['config']['model_config']}-{meta['trainable']}-step{meta['step']}"
