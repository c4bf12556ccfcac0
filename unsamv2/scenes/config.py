"""Configuration and result types of the procedural hierarchical scene generator.

A :class:`Scene` is an RGB image plus a forest of :class:`SceneNode` (objects, their parts, the
parts' sub-parts, ...), each with the exact mask of its *visible* pixels and its ground-truth
granularity (docs/architecture.md#mining-granularity, computed per object group).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np

from unsamv2.errors import InputError

GENERATOR_VERSION = "1.0"
MIN_SIZE = 64
MAX_SIZE = 2048
TEXTURE_KINDS: tuple[str, ...] = ("flat", "noise", "stripes", "checker", "dots", "wood", "gradient")
SPLIT_METHODS: tuple[str, ...] = ("bands", "voronoi", "rings", "sectors", "grid", "spots")


def _check_range(name: str, lo: float, hi: float, low_bound: float, high_bound: float) -> None:
    if not (low_bound <= lo <= hi <= high_bound):
        raise InputError(
            f"SceneConfig.{name} must satisfy {low_bound} <= low <= high <= {high_bound}, "
            f"got ({lo}, {hi}); pass a valid range."
        )


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of :func:`unsamv2.scenes.generate_scene`; the defaults give honest, varied scenes.

    Sizes given as fractions are relative to the image side (``object_scale``) or to the image
    area (``*_area``), so a config means the same thing at every resolution.
    """

    objects: tuple[int, int] = (3, 6)  # number of objects per scene, inclusive range
    levels: int = 4  # deepest hierarchy: 2 = object+parts, 3 = +sub-parts, 4 = +sub-sub-parts
    parts: tuple[int, int] = (2, 5)  # children per split node (fewer at deeper levels)
    split_prob: tuple[float, ...] = (1.0, 0.6, 0.4)  # chance a node at level 0, 1, 2 is split
    split_methods: tuple[str, ...] = SPLIT_METHODS
    appendage_prob: float = 0.55  # chance an object gets appendages (limbs, handles, heads)
    object_scale: tuple[float, float] = (0.16, 0.6)  # object body diameter / image side
    aspect_ratio: tuple[float, float] = (0.35, 1.0)  # minor / major axis of the body
    texture_kinds: tuple[str, ...] = TEXTURE_KINDS
    texture_contrast: float = 0.45  # colour distance between a texture's two colours, 0..1
    similar_colour_prob: float = 0.3  # chance a part takes (almost) its parent's colour
    lighting: float = 0.35  # strength of the image-wide lighting gradient, 0..1
    shading: float = 0.35  # darkening towards an object's rim, 0..1
    shadows: float = 0.35  # opacity of cast shadows, 0..1
    pixel_noise: float = 0.025  # std of sensor noise on the [0, 1] intensity scale
    blur_sigma: float = 0.6  # optical blur (pixels) of the final image; masks stay exact
    clutter: int = 45  # unannotated background shapes per 512 x 512 pixels
    occlusion: float = 0.5  # most of an object's in-frame area that later objects may hide
    min_object_area: float = 0.004  # visible objects smaller than this (x image area) are dropped
    min_part_area: float = 0.0002  # visible parts smaller than this are merged into a sibling
    split_min_area: float = 0.0015  # regions smaller than this are never split
    min_part_thickness: float = 0.006  # no part thinner than this (x image side) is created

    def __post_init__(self) -> None:
        _check_range("objects", *self.objects, 1, 64)
        _check_range("parts", *self.parts, 2, 12)
        _check_range("object_scale", *self.object_scale, 0.02, 1.5)
        _check_range("aspect_ratio", *self.aspect_ratio, 0.1, 1.0)
        if not 1 <= self.levels <= 4:
            raise InputError(f"SceneConfig.levels must be 1..4, got {self.levels}.")
        if len(self.split_prob) < self.levels - 1 or not all(0 <= p <= 1 for p in self.split_prob):
            raise InputError(
                f"SceneConfig.split_prob needs {self.levels - 1} probabilities in [0, 1], "
                f"got {self.split_prob}."
            )
        for name, allowed in (("texture_kinds", TEXTURE_KINDS), ("split_methods", SPLIT_METHODS)):
            chosen = getattr(self, name)
            bad = [k for k in chosen if k not in allowed]
            if not chosen or bad:
                raise InputError(f"SceneConfig.{name} must be a non-empty subset of {allowed}, got {chosen}.")
        for f in fields(self):
            value = getattr(self, f.name)
            top = 5.0 if f.name == "blur_sigma" else 1.0
            if isinstance(value, float) and not (0.0 <= value <= top):
                raise InputError(f"SceneConfig.{f.name} must lie in [0, {top}], got {value}.")
        if self.clutter < 0:
            raise InputError(f"SceneConfig.clutter must be >= 0, got {self.clutter}.")


@dataclass(frozen=True, eq=False)
class SceneNode:
    """One annotated region: an object (level 0) or a part of a level-(k-1) node (level k).

    ``mask`` is (H, W) bool: the node's visible pixels after occlusion. A node with children is
    exactly the union of its children's masks; a child lies inside its parent.
    """

    node_id: int  # 1-based within the scene; parents come before their children
    parent_id: int | None  # None for objects
    object_id: int  # node_id of the root object
    level: int  # 0 object, 1 part, 2 sub-part, 3 sub-sub-part
    mask: np.ndarray  # (H, W) bool
    granularity: float  # docs/architecture.md#mining-granularity within the object's group, in [0.1, 1.0]

    @property
    def area(self) -> int:
        """Number of visible pixels."""
        return int(np.count_nonzero(self.mask))


@dataclass(frozen=True, eq=False)
class Scene:
    """A generated image (H, W, 3) uint8 RGB with its hierarchical ground truth."""

    image: np.ndarray
    nodes: list[SceneNode]
    seed: int
    config: SceneConfig = field(default_factory=SceneConfig)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def objects(self) -> list[SceneNode]:
        """The level-0 nodes, in paint order (back to front)."""
        return [n for n in self.nodes if n.parent_id is None]

    def children(self, node_id: int) -> list[SceneNode]:
        """The direct children of ``node_id`` (empty for a leaf)."""
        return [n for n in self.nodes if n.parent_id == node_id]

    def group(self, object_id: int) -> Iterator[SceneNode]:
        """The object ``object_id`` and all its descendants (its granularity group)."""
        return (n for n in self.nodes if n.object_id == object_id)
