"""One object of a scene, built in its own local frame: a body shape, optional appendages, and a
tree of parts that tile it.

The object is a label image (local canvas) whose pixels hold the index of the *leaf* node that
owns them, plus the tree (parent of every node) and a style per node. Any node's mask is the union
of the leaves below it, so children tile their parent and lie inside it by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from unsamv2.scenes import shapes
from unsamv2.scenes.config import SceneConfig
from unsamv2.scenes.partition import partition
from unsamv2.scenes.textures import (
    Style,
    random_colour,
    random_style,
    restyle,
    second_colour,
    shifted_colour,
)

# Gaussian colour steps (hue, saturation, value) from a node to its children, by child level.
_COLOUR_STEP = {1: (0.10, 0.18, 0.18), 2: (0.05, 0.10, 0.12), 3: (0.035, 0.08, 0.10)}


@dataclass
class ObjectModel:
    """An object in its local frame; index 0 of ``parents``/``styles``/``levels`` is the object."""

    labels: np.ndarray  # (h, w) int32: index of the leaf node owning each pixel, -1 outside
    radius: float  # semi-major axis of the body, pixels
    parents: list[int] = field(default_factory=lambda: [-1])
    levels: list[int] = field(default_factory=lambda: [0])
    styles: list[Style] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray:
        """(h, w) bool: every pixel of the object, before occlusion."""
        return self.labels >= 0

    def add(self, parent: int, style: Style) -> int:
        self.parents.append(parent)
        self.levels.append(self.levels[parent] + 1)
        self.styles.append(style)
        return len(self.parents) - 1


def _bbox(mask: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


@dataclass(frozen=True)
class _Limits:
    """Pixel sizes below which cells are rejected (``cell``, ``thickness``) or regions not split."""

    cell: int
    thickness: float
    split: int

    @classmethod
    def for_image(cls, cfg: SceneConfig, size: int) -> _Limits:
        cell = max(8, int(2 * cfg.min_part_area * size * size))
        split = max(2 * cell, int(cfg.split_min_area * size * size))
        return cls(cell=cell, thickness=max(1.5, cfg.min_part_thickness * size), split=split)


def _try_split(
    rng: np.random.Generator, cfg: SceneConfig, mask: np.ndarray, level: int, lim: _Limits
) -> list[np.ndarray] | None:
    """Cells tiling ``mask`` (full-canvas bool masks) for a node at ``level``, or None."""
    if not mask.any():
        return None
    box = _bbox(mask)
    k_hi = max(2, cfg.parts[1] - level)
    for _ in range(4):
        k = int(rng.integers(cfg.parts[0], max(cfg.parts[0], k_hi) + 1))
        cells = partition(rng, mask[box], str(rng.choice(cfg.split_methods)), k, lim.cell, lim.thickness)
        if cells is not None:
            out = []
            for cell in cells:
                full = np.zeros(mask.shape, dtype=bool)
                full[box] = cell
                out.append(full)
            return out
    return None


def _child_style(
    rng: np.random.Generator, cfg: SceneConfig, parent: Style, level: int, size_px: float, used: set[str]
) -> Style:
    """A child's look: near its parent's colour; sometimes almost the same colour, then another texture."""
    if rng.random() < cfg.similar_colour_prob:
        colour = shifted_colour(rng, parent.color_a, 0.01, 0.03, 0.03)
        base = replace(parent, color_a=colour, color_b=second_colour(rng, colour, cfg.texture_contrast))
        return restyle(rng, base, cfg.texture_kinds, used)
    colour = shifted_colour(rng, parent.color_a, *_COLOUR_STEP[min(level, 3)])
    style = random_style(rng, cfg.texture_kinds, colour, cfg.texture_contrast, size_px)
    if rng.random() < 0.3:  # parts of one object often share a material
        style = replace(style, kind=parent.kind)
    return style


def _grow(rng: np.random.Generator, cfg: SceneConfig, obj: ObjectModel, node: int, mask: np.ndarray, lim: _Limits) -> None:
    """Give ``node`` (covering ``mask``) its pixels, splitting it recursively into children."""
    level = obj.levels[node]
    deep_enough = level + 1 >= cfg.levels
    cells = None
    if not deep_enough and mask.sum() >= lim.split and rng.random() < cfg.split_prob[level]:
        cells = _try_split(rng, cfg, mask, level, lim)
    if cells is None:
        obj.labels[mask] = node
        return
    _add_children(rng, cfg, obj, node, cells, lim)


def _add_children(
    rng: np.random.Generator, cfg: SceneConfig, obj: ObjectModel, node: int, cells: list[np.ndarray], lim: _Limits
) -> None:
    used: set[str] = set()
    for cell in cells:
        size_px = float(np.sqrt(cell.sum()))
        style = _child_style(rng, cfg, obj.styles[node], obj.levels[node] + 1, size_px, used)
        used.add(style.kind)
        child = obj.add(node, style)
        _grow(rng, cfg, obj, child, cell, lim)


def _boundary_point(body: np.ndarray, centre: int, phi: float) -> tuple[float, float]:
    """(x, y) relative to the centre of the last body pixel along the ray at angle ``phi``."""
    t = np.arange(0, centre, 0.5)
    xs, ys = t * np.cos(phi), t * np.sin(phi)
    inside = body[np.round(ys).astype(int) + centre, np.round(xs).astype(int) + centre]
    last = int(np.flatnonzero(inside)[-1]) if inside.any() else 0
    return float(xs[last]), float(ys[last])


def _appendages(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, body: np.ndarray, rx: float, ry: float) -> list[np.ndarray]:
    """1-3 limbs, handles or heads attached to the body's boundary (each may overlap the body)."""
    centre = body.shape[0] // 2
    out = []
    for _ in range(int(rng.integers(1, 4))):
        phi = float(rng.uniform(0, 2 * np.pi))
        bx, by = _boundary_point(body, centre, phi)
        heading = phi + float(rng.normal(0, 0.35))
        dx, dy = np.cos(heading), np.sin(heading)
        if rng.random() < 0.6:  # a limb: tapered capsule pointing outwards
            width = ry * rng.uniform(0.1, 0.28)
            length = rx * rng.uniform(0.35, 0.9)
            p0, p1 = (bx - dx * width, by - dy * width), (bx + dx * length, by + dy * length)
            out.append(shapes.capsule(yy, xx, p0, p1, width, width * rng.uniform(0.5, 1.3)))
        else:  # a head: a smaller shape sitting on the boundary
            r = rx * rng.uniform(0.2, 0.45)
            cx, cy = bx + dx * r * 0.7, by + dy * r * 0.7
            out.append(shapes.random_shape(rng, yy - cy, xx - cx, r * rng.uniform(0.6, 1.0), r))
    return out


def _level_one_cells(
    rng: np.random.Generator, cfg: SceneConfig, body: np.ndarray, extras: list[np.ndarray], lim: _Limits
) -> list[np.ndarray] | None:
    """The object's parts: appendages (minus what is already taken) plus the body, split or whole."""
    taken = body.copy()
    limbs = []
    for extra in extras:
        own = extra & ~taken
        if own.sum() >= lim.cell:
            limbs.append(own)
            taken |= own
    if not limbs or rng.random() < 0.4:
        body_cells = _try_split(rng, cfg, body, 0, lim)
        if body_cells is None and not limbs:
            return None
        return (body_cells or [body]) + limbs
    return [body] + limbs


def build_object(rng: np.random.Generator, cfg: SceneConfig, size: int) -> ObjectModel:
    """A random object for a ``size`` x ``size`` image, with its part hierarchy and styles."""
    lo, hi = cfg.object_scale
    rx = 0.5 * size * float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    ry = rx * float(rng.uniform(*cfg.aspect_ratio))
    half = int(np.ceil(2.2 * rx)) + 2
    yy, xx = (g.astype(np.float32) for g in np.ogrid[-half : half + 1, -half : half + 1])
    body = shapes.random_shape(rng, yy, xx, ry, rx)
    if body.sum() < 4:  # a thin shape of a tiny object can miss every pixel centre
        body = shapes.ellipse(yy, xx, max(ry, 2.0), max(rx, 2.0))
    extras = _appendages(rng, yy, xx, body, rx, ry) if rng.random() < cfg.appendage_prob else []
    lim = _Limits.for_image(cfg, size)
    obj = ObjectModel(labels=np.full(body.shape, -1, dtype=np.int32), radius=rx)
    obj.styles.append(random_style(rng, cfg.texture_kinds, random_colour(rng), cfg.texture_contrast, 2 * rx))
    split = cfg.levels > 1 and rng.random() < cfg.split_prob[0]
    cells = _level_one_cells(rng, cfg, body, extras, lim) if split else None
    if cells is None:
        obj.labels[body | np.logical_or.reduce(extras, initial=False)] = 0
    else:
        _add_children(rng, cfg, obj, 0, cells, lim)
    return _trimmed(obj)


def _trimmed(obj: ObjectModel) -> ObjectModel:
    box = _bbox(obj.labels >= 0)
    return replace(obj, labels=np.ascontiguousarray(obj.labels[box]))
