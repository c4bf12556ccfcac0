"""Miner configuration and output types (docs/architecture.md#mining, #data-contracts).

:class:`MinerConfig` is a frozen dataclass validated once at construction (one-sentence
:class:`~unsamv2.errors.InputError` per bad value) and hashed stably by :meth:`MinerConfig.config_hash`
(the hash goes into every mask-table row as ``producer_config_hash``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Literal, get_args

import numpy as np

from unsamv2.errors import InputError

#: Bumped whenever mining output can change for the same config; part of the config hash.
MINER_VERSION = "3"  # 2: DINOv2 *_reg position-embedding interpolation; 3: multi-scale divide, scene group, refine
Backbone = Literal["descriptor", "dinov2", "dinov3"]
BACKBONES: tuple[str, ...] = get_args(Backbone)
Normalization = Literal["imagenet", "sat493m"]
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
NATIVE_PATCH = {"descriptor": 16, "dinov2": 14, "dinov3": 16}
DIVIDE_GRID = 60  # default divide grid (long side, patches): 480 px at ViT-B/8 in CutLER
CROP_GRID = 30  # default divide grid of a crop of the multi-scale divide (long side, patches)
ORIGINS = ("divide", "conquer", "part")


def _fraction(name: str, value: float, low: float = 0.0, high: float = 1.0) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
        raise InputError(f"MinerConfig.{name} must be a number in [{low}, {high}], got {value!r}.")


def _positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"MinerConfig.{name} must be an integer >= {minimum}, got {value!r}.")


@dataclass(frozen=True)
class MinerConfig:
    """Every knob of the granularity-aware divide-and-conquer miner (defaults = docs/architecture.md#mining).

    Backbone: ``backbone`` is "descriptor" (weight-free, default), "dinov2" or "dinov3";
    ``backbone_weights`` is a local path or ``s3://`` URI of the ViT checkpoint (required for
    DINO); ``backbone_arch`` names the ViT ("vits14", "vitb16", ...; "auto" infers it from the
    checkpoint); ``patch_size`` defaults to the backbone's (16, 14, 16); ``backbone_normalization``
    names the input mean/std ("imagenet", or "sat493m" for DINOv3's satellite checkpoints).
    Divide from candidates: with ``candidates`` (a COCO file or mask table of a detector's masks
    with scores, local or ``s3://``; see :mod:`unsamv2.mining.candidates`) the masks with score >
    ``candidate_min_score`` replace MaskCut, as the release's CutLER divide.
    Divide (MaskCut): image resized to ``divide_long_side`` (default 60 patches), affinity
    threshold ``tau``, ``rounds`` rounds, drop masks with IoU > ``maskcut_max_iou`` to an earlier
    one or area <= ``maskcut_min_area``; taken patches are removed from (``masking="remove"``) or
    zeroed in (``"zero"``, as CutLER) the next rounds' graph; ``round_rule`` "strict" takes every
    round's mask and compares with all kept masks, "cutler" is CutLER's loop (see
    :func:`unsamv2.mining.maskcut.maskcut`). Multi-scale divide: ``divide_crops`` = n >= 2 also
    runs MaskCut on an n x n grid of overlapping crops at ``divide_crop_grid`` patches on the crop's
    long side, and pools their masks with the whole image's (MaskCut's IoU rule across views; see
    :mod:`unsamv2.mining.divide`); 1 = the whole image only, as before.
    Relation: instances have area > ``instance_min_area`` of the view that found them (the image,
    or the crop) and are contained in no candidate (|a&b|/|a| > ``containment``).
    ``scene_group`` also conquers the whole image as one more instance group (its regions get g
    relative to the image; the image itself is not a mask). Conquer: instance box resized to ``conquer_long_side``,
    merged at ``thresholds``, regions of >= ``min_region_patches`` patches with more than
    ``coverage`` of their pixels inside the instance; NMS at ``nms_iou``, protected NMS at
    ``protected_nms_iou``. ``refine`` (on, as the release refines every mask) is the guided-filter
    refinement of the instances and their masks (:mod:`unsamv2.mining.refine`). ``device``: "cpu"
    or "cuda" (DINO forward and MaskCut products).
    """

    backbone: Backbone = "descriptor"
    backbone_weights: str | None = None
    backbone_arch: str = "auto"
    backbone_normalization: Normalization = "imagenet"
    patch_size: int | None = None
    candidates: str | None = None
    candidate_min_score: float = 0.3
    divide_long_side: int | None = None
    tau: float = 0.2
    rounds: int = 3
    masking: str = "remove"
    round_rule: str = "strict"
    divide_crops: int = 2
    divide_crop_grid: int = CROP_GRID
    maskcut_max_iou: float = 0.5
    maskcut_min_area: float = 0.01
    instance_min_area: float = 0.05
    containment: float = 0.8
    conquer_long_side: int = 768
    thresholds: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5)
    min_region_patches: int = 4
    coverage: float = 0.9
    nms_iou: float = 0.8
    protected_nms_iou: float = 0.8
    scene_group: bool = True
    refine: bool = True
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise InputError(f"MinerConfig.backbone must be one of {BACKBONES}, got {self.backbone!r}.")
        if self.backbone != "descriptor" and not self.backbone_weights:
            raise InputError(
                f"MinerConfig.backbone={self.backbone!r} needs backbone_weights: a local path or "
                "s3:// URI of the checkpoint (weights are never downloaded)."
            )
        if self.backbone_normalization not in NORMALIZATIONS:
            raise InputError(f"MinerConfig.backbone_normalization must be 'imagenet' or 'sat493m', "
                             f"got {self.backbone_normalization!r}.")
        if self.patch_size is not None:
            _positive_int("patch_size", self.patch_size, 2)
        if not (isinstance(self.candidate_min_score, (int, float)) and 0.0 <= self.candidate_min_score < 1.0):
            raise InputError(f"MinerConfig.candidate_min_score must lie in [0, 1), got {self.candidate_min_score!r}.")
        if self.divide_long_side is not None:
            _positive_int("divide_long_side", self.divide_long_side, 32)
        _positive_int("conquer_long_side", self.conquer_long_side, 32)
        _positive_int("rounds", self.rounds)
        _positive_int("divide_crops", self.divide_crops)
        _positive_int("divide_crop_grid", self.divide_crop_grid, 2)
        _positive_int("min_region_patches", self.min_region_patches)
        if not (isinstance(self.tau, (int, float)) and 0.0 <= self.tau < 1.0):
            raise InputError(f"MinerConfig.tau must be a number in [0, 1), got {self.tau!r}.")
        for name in ("maskcut_max_iou", "maskcut_min_area", "instance_min_area", "containment",
                     "coverage", "nms_iou", "protected_nms_iou"):
            _fraction(name, getattr(self, name))
        if self.masking not in ("remove", "zero"):
            raise InputError(f"MinerConfig.masking must be 'remove' or 'zero', got {self.masking!r}.")
        if self.round_rule not in ("strict", "cutler"):
            raise InputError(f"MinerConfig.round_rule must be 'strict' or 'cutler', got {self.round_rule!r}.")
        thr = tuple(self.thresholds) if isinstance(self.thresholds, (list, tuple)) else None
        if not thr or not all(isinstance(t, (int, float)) and -1.0 <= t <= 1.0 for t in thr):
            raise InputError(
                f"MinerConfig.thresholds must be a non-empty sequence of cosines in [-1, 1], "
                f"got {self.thresholds!r}."
            )
        object.__setattr__(self, "thresholds", tuple(float(t) for t in thr))
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise InputError(f"MinerConfig.device must be 'cpu' or 'cuda', got {self.device!r}.")
        for name in ("refine", "scene_group"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"MinerConfig.{name} must be true or false, got {getattr(self, name)!r}.")

    @property
    def effective_patch_size(self) -> int:
        """The patch size in use: ``patch_size`` or the backbone's native one."""
        return int(self.patch_size or NATIVE_PATCH[self.backbone])

    @property
    def effective_divide_long_side(self) -> int:
        """The divide long side in use: ``divide_long_side`` or 60 patches."""
        return int(self.divide_long_side or DIVIDE_GRID * self.effective_patch_size)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict of all fields."""
        d = asdict(self)
        d["thresholds"] = list(self.thresholds)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> MinerConfig:
        """Build from a dict (e.g. parsed YAML/JSON); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown MinerConfig fields {unknown}; valid fields are {sorted(known)}.")
        values = dict(data)
        if isinstance(values.get("thresholds"), list):
            values["thresholds"] = tuple(values["thresholds"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def config_hash(self) -> str:
        """Stable hex digest (16 chars of sha256) of the miner version and every field value.

        The device is excluded: it does not change what is mined.
        """
        payload = {k: v for k, v in self.to_dict().items() if k != "device"}
        payload["miner_version"] = MINER_VERSION
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class MinedMask:
    """One mined pseudo-mask.

    ``mask`` (H, W) bool in image pixels; ``bbox`` (x, y, w, h) float pixels; ``area`` pixels;
    ``granularity`` in [0.1, 1.0] within its instance group; ``instance_id`` index of the group in
    the image; ``is_part`` False for the instance mask itself; ``origin`` "divide" (the instance),
    "conquer" (a merged region) or "part" (a divide candidate inside the instance); ``score`` in
    [0, 1] (instances and divide parts 1.0; conquer masks: the fraction of merge levels in which
    the region exists, i.e. its stability; regions of the scene group: their stability / L, for
    L merge levels, so they rank after the instance groups' masks).
    """

    mask: np.ndarray
    bbox: tuple[float, float, float, float]
    area: int
    granularity: float
    instance_id: int
    is_part: bool
    origin: str
    score: float = 1.0
