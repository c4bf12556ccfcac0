"""The frozen training configuration (docs/architecture.md#training), validated once at construction.

Defaults are the paper's recipe (the official ``unsamv2_small_training.yaml``): up to 30 masks per
image, 1 + 3 clicks, focal x20 + dice x1 + IoU-L1 x1 + object-score x1, AdamW with a cosine lr
1e-4 -> 1e-5 and weight decay 1e-5, bf16 autocast on CUDA, flip / affine (25 deg, shear 20) /
colour jitter / grayscale augmentation, adapter-only training, and 4 images per step (the
reference's effective batch: 2 per GPU x 2 GPUs; with W DDP workers give ``batch_size`` 4 / W).
Every bad value raises :class:`~unsamv2.errors.InputError` with one sentence.

The config is plain data: :meth:`TrainConfig.to_dict` / :meth:`TrainConfig.from_dict` round-trip
through JSON (how the Ray backend, a Ray Job and a checkpoint carry it), and
:meth:`TrainConfig.config_hash` names a run.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, TypeGuard, get_args

from unsamv2.errors import InputError

Trainable = Literal["adapter", "full"]
Objective = Literal["unsamv2", "sam2"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16"]
TRAINABLE_MODES: tuple[str, ...] = get_args(Trainable)
OBJECTIVES: tuple[str, ...] = get_args(Objective)
DEVICES: tuple[str, ...] = get_args(Device)
PRECISIONS: tuple[str, ...] = get_args(Precision)

# Base pretraining (``unsamv2 pretrain``): SAM-2's supervised recipe on human (ground-truth) masks,
# sized for the shipped base on a 2-core CPU (docs/pretraining.md). Focal and dice weigh 1 : 1
# (SAM-2: 20 : 1, which collapses a from-scratch model to empty masks here, measured). Flags and
# --config-file values override these (``unsamv2 pretrain``).
PRETRAIN_DEFAULTS: dict[str, Any] = {
    "objective": "sam2", "trainable": "full", "model_config": "base", "use_split": False,
    "max_steps": 2500, "warmup_steps": 0, "batch_size": 4, "max_masks_per_image": 16,
    "correction_clicks": 2, "box_prompt_prob": 0.5, "min_mask_area": 0.01, "lr": 1e-3, "min_lr": 1e-5,
    "weight_decay": 0.1, "encoder_lr_scale": 0.1, "grad_clip": 0.1, "weight_focal": 1.0, "checkpoint_every": 125,
}
# weight_decay 0.1 (SAM-2's, not on biases / LayerNorms) and the encoder at a tenth of the lr keep
# the image embedding near the scale of the prompt encoder's positional encoding: with 1e-4 and
# one lr it grew to std ~70 against the encoding's 0.7, and the model learned to ignore the click
# (its masks identical for every click of an image; docs/pretraining.md).


@dataclass(frozen=True)
class AugmentConfig:
    """Joint image + mask augmentation (the official training YAML's values).

    ``hflip``: probability of a horizontal flip; ``degrees`` / ``shear``: uniform ranges
    (-v, v) of rotation and x-shear in degrees, about the image centre; ``jitter``: colour
    jitters applied one after the other, each (brightness, contrast, saturation) factor ranges
    (1 - v, 1 + v) in a random order; ``grayscale``: probability of turning the image grey.
    """

    enabled: bool = True
    hflip: float = 0.5
    degrees: float = 25.0
    shear: float = 20.0
    jitter: tuple[tuple[float, float, float], ...] = ((0.1, 0.03, 0.03), (0.1, 0.05, 0.05))
    grayscale: float = 0.05

    def __post_init__(self) -> None:
        _fraction("augment.hflip", self.hflip)
        _fraction("augment.grayscale", self.grayscale)
        for name in ("degrees", "shear"):
            value = getattr(self, name)
            if not _finite(value) or not 0 <= value <= 90:
                raise InputError(f"augment.{name} must be in [0, 90] degrees, got {value!r}.")
        jitter = tuple(tuple(float(v) for v in j) for j in self.jitter)
        if any(len(j) != 3 or not all(0 <= v < 1 for v in j) for j in jitter):
            raise InputError(f"augment.jitter must be (brightness, contrast, saturation) triples in [0, 1), "
                             f"got {self.jitter!r}.")
        object.__setattr__(self, "jitter", jitter)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; see the module docstring for the defaults.

    Data: ``table_uri`` (mask table root, local or s3://), ``split_uri`` (folder of
    ``split.parquet`` from the stats step; default ``<table>/stats``; None-able via
    ``use_split=False`` to train on every ok image), ``output_uri`` (run folder: checkpoints,
    summary). Light supervision (UnSAMv2+): ``human_coco_uri`` (COCO-format annotations with
    human masks; ``human_image_root`` defaults to the JSON's folder) mixed in as
    ``human_fraction`` of the images.
    Model: ``model_config`` / ``base_checkpoint`` / ``init_adapter`` as for
    :func:`unsamv2.model.build_model` (default: the shipped pretrained ``base``);
    ``trainable`` "adapter" (the paper: only the granularity module trains) or "full" (every weight).
    ``box_prompt_prob``: base pretraining only, the chance that a step's first prompt is each
    target's box instead of a click (SAM-2's recipe uses 0.5).
    ``min_mask_area``: masks smaller than this fraction of the image are not sampled as targets
    (0: every mask, the paper's recipe).
    ``weight_decay`` applies to weights, not to biases and LayerNorm parameters (SAM-2's groups,
    :mod:`unsamv2.train.optim`); ``encoder_lr_scale``: the image encoder's learning rate as a
    fraction of ``lr`` (SAM-2's ``vision_lr / base_lr``; only matters when the encoder trains).
    ``grad_clip`` > 0 clips the gradients' global L2 norm (SAM-2's training uses 0.1; 0 is off).
    ``nan_patience``: a step whose loss or gradient is not finite skips its optimizer update;
    more than ``nan_patience`` such steps in a row stop training with
    :class:`~unsamv2.train.guard.TrainingDivergedError` (0, the default: stop at the first).
    Schedule: ``max_steps`` optimizer steps, each of ``batch_size`` images per worker; the lr
    rises linearly over ``warmup_steps`` (0: none, the paper's recipe), then follows the cosine.
    Objective: ``"unsamv2"`` trains an UnSAMv2 model at each mask's g (the paper);
    ``"sam2"`` is SAM-2's own supervised recipe on a plain SAM-2 (base pretraining,
    ``unsamv2 pretrain``: every weight trains, first click multimask with best-of-3 loss, g
    ignored).
    """

    table_uri: str
    output_uri: str
    split_uri: str | None = None
    use_split: bool = True
    human_coco_uri: str | None = None
    human_image_root: str | None = None
    human_fraction: float = 0.0
    model_config: str = "base"
    base_checkpoint: str | None = None
    init_adapter: str | None = None
    trainable: Trainable = "adapter"
    objective: Objective = "unsamv2"
    max_steps: int = 1000
    warmup_steps: int = 0
    batch_size: int = 4
    max_masks_per_image: int = 30
    min_mask_area: float = 0.0
    correction_clicks: int = 3
    box_prompt_prob: float = 0.0
    lr: float = 1e-4
    min_lr: float = 1e-5
    weight_decay: float = 1e-5
    encoder_lr_scale: float = 1.0
    grad_clip: float = 0.0
    nan_patience: int = 0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    weight_focal: float = 20.0
    weight_dice: float = 1.0
    weight_iou: float = 1.0
    weight_object: float = 1.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    device: Device = "auto"
    precision: Precision = "auto"
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    val_images: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            object.__setattr__(self, "augment", AugmentConfig(**_known(AugmentConfig, self.augment, "augment")))
        for name in ("table_uri", "output_uri"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"TrainConfig.{name} must be a non-empty path or s3:// URI, got {value!r}.")
        _choice("trainable", self.trainable, TRAINABLE_MODES)
        _choice("objective", self.objective, OBJECTIVES)
        if self.objective == "sam2" and (self.trainable != "full" or self.init_adapter is not None):
            raise InputError("objective 'sam2' (base pretraining) trains every SAM-2 weight and has no adapter: "
                             "use trainable='full' and no init_adapter.")
        _choice("device", self.device, DEVICES)
        _choice("precision", self.precision, PRECISIONS)
        for name, minimum in (("max_steps", 1), ("batch_size", 1), ("max_masks_per_image", 1),
                              ("correction_clicks", 0), ("checkpoint_every", 1), ("keep_checkpoints", 0),
                              ("log_every", 1), ("val_images", 0), ("seed", 0), ("warmup_steps", 0),
                              ("nan_patience", 0)):
            _integer(name, getattr(self, name), minimum)
        for name in ("lr", "min_lr", "encoder_lr_scale"):
            if not _finite(getattr(self, name)) or getattr(self, name) <= 0:
                raise InputError(f"TrainConfig.{name} must be a positive number, got {getattr(self, name)!r}.")
        if self.min_lr > self.lr:
            raise InputError(f"TrainConfig.min_lr ({self.min_lr}) must not exceed lr ({self.lr}).")
        for name in ("grad_clip", "weight_decay", "focal_gamma", "weight_focal", "weight_dice", "weight_iou", "weight_object"):
            if not _finite(getattr(self, name)) or getattr(self, name) < 0:
                raise InputError(f"TrainConfig.{name} must be a number >= 0, got {getattr(self, name)!r}.")
        _fraction("focal_alpha", self.focal_alpha)
        _fraction("min_mask_area", self.min_mask_area)
        _fraction("box_prompt_prob", self.box_prompt_prob)
        if self.box_prompt_prob > 0 and self.objective != "sam2":
            raise InputError("box_prompt_prob is part of SAM-2's base pretraining (objective 'sam2'); UnSAMv2 "
                             "training prompts with clicks only.")
        _fraction("human_fraction", self.human_fraction)
        if self.human_fraction > 0 and not self.human_coco_uri:
            raise InputError("human_fraction > 0 needs human_coco_uri (a COCO-format annotations file).")
        if (self.trainable == "adapter" and self.base_checkpoint is None
                and self.model_config not in ("tiny", "base")):
            raise InputError(f"adapter training of {self.model_config} needs base_checkpoint (a SAM-2.1 or UnSAMv2 "
                             "checkpoint): SAM-2 would otherwise keep random weights.")
        if self.human_fraction >= 1:
            raise InputError("human_fraction must be below 1: the mined table is the main training data.")

    # ------------------------------------------------------------------ derived values
    @property
    def resolved_split_uri(self) -> str | None:
        """Where ``split.parquet`` is read from (None: no split, every ok image trains)."""
        if not self.use_split:
            return None
        return self.split_uri or f"{self.table_uri.rstrip('/')}/stats"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an InputError."""
        values = _known(cls, data, "TrainConfig")
        if "augment" in values and isinstance(values["augment"], dict):
            values["augment"] = AugmentConfig(**_known(AugmentConfig, values["augment"], "augment"))
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def config_hash(self) -> str:
        """12 hex digits over every field except the run-control ones (where and how often to
        write, when to give up on a diverging run), so a resumed run with a new ``max_steps`` is a
        different hash but a moved output is not."""
        data = self.to_dict()
        for key in ("output_uri", "checkpoint_every", "keep_checkpoints", "log_every", "nan_patience"):
            data.pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with ``changes``."""
        return replace(self, **changes)


def _known(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{what} has unknown keys {unknown}; valid keys are {sorted(names)}.")
    return dict(data)


def _finite(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(name: str, value: object) -> None:
    if not _finite(value) or not 0 <= value <= 1:
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}.")


def _integer(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}.")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"TrainConfig.{name} must be one of {', '.join(choices)}, got {value!r}.")
