"""``generate_scene``: one procedural hierarchical scene with exact ground truth, from a seed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from unsamv2.errors import InputError
from unsamv2.mining.granularity import granularity_scores
from unsamv2.scenes.compose import Composition, compose, place_objects, subtree_leaves
from unsamv2.scenes.config import MAX_SIZE, MIN_SIZE, Scene, SceneConfig, SceneNode
from unsamv2.scenes.objects import build_object
from unsamv2.scenes.render import background, finish, paint_objects


def check_size(size: int) -> int:
    """``size`` as an int, or an InputError when it is outside [MIN_SIZE, MAX_SIZE]."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise InputError(f"scene size must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {size!r}.")
    return int(size)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"the seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene ``index`` of a dataset with master ``seed`` (a 53-bit int, JSON-safe).

    Derived from (seed, index) alone, so any prefix or subset of a dataset is reproducible.
    """
    state = np.random.SeedSequence([_check_seed(seed), int(index)]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(11))


def _group_nodes(comp: Composition, root: int, first_id: int, shape: tuple[int, int]) -> list[SceneNode]:
    """The object ``root`` and its descendants, depth-first (parents first), with masks and g."""
    window = comp.windows[comp.roots.index(root)]
    crop = comp.labels[window]
    order: list[tuple[int, int | None, int]] = []  # (global node, parent position, level)
    stack: list[tuple[int, int | None, int]] = [(root, None, 0)]
    while stack:
        node, parent_pos, level = stack.pop()
        pos = len(order)
        order.append((node, parent_pos, level))
        stack.extend((c, pos, level + 1) for c in reversed(comp.children[node]))
    masks = []
    for node, _, _ in order:
        lut = np.zeros(len(comp.styles) + 1, dtype=bool)
        lut[np.asarray(subtree_leaves(comp.children, node)) + 1] = True
        mask = np.zeros(shape, dtype=bool)
        mask[window] = lut[crop]
        masks.append(mask)
    g = granularity_scores([int(m.sum()) for m in masks])
    return [
        SceneNode(
            node_id=first_id + i,
            parent_id=None if parent_pos is None else first_id + parent_pos,
            object_id=first_id,
            level=level,
            mask=mask,
            granularity=float(g[i]),
        )
        for i, ((_, parent_pos, level), mask) in enumerate(zip(order, masks, strict=True))
    ]


def generate_scene(seed: int, size: int = 512, config: SceneConfig | None = None) -> Scene:
    """A ``size`` x ``size`` scene of textured objects made of parts, and its exact hierarchy.

    Deterministic: the same (seed, size, config) always gives the same image and masks. Nodes come
    object by object in paint order (back to front), each object followed by its descendants
    depth-first, so a parent's ``node_id`` is always smaller than its children's.
    """
    seed, size = _check_seed(seed), check_size(size)
    cfg = config if config is not None else SceneConfig()
    if not isinstance(cfg, SceneConfig):
        raise InputError(f"config must be a SceneConfig, got {type(cfg).__name__}.")
    rng = np.random.default_rng(seed)
    light = float(rng.uniform(0, 2 * np.pi))
    canvas = background(rng, size, cfg)
    n_objects = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
    models = [build_object(rng, cfg, size) for _ in range(n_objects)]
    placed = place_objects(rng, models, size, cfg.occlusion)
    area = size * size
    comp = compose(placed, size, max(1, int(cfg.min_object_area * area)), max(1, int(cfg.min_part_area * area)))
    paint_objects(rng, canvas, comp, cfg, light)
    image = finish(rng, canvas, cfg, light)
    nodes: list[SceneNode] = []
    for root in comp.roots:
        nodes.extend(_group_nodes(comp, root, len(nodes) + 1, (size, size)))
    return Scene(image=image, nodes=nodes, seed=seed, config=cfg)


def iter_scenes(n: int, seed: int, size: int = 512, config: SceneConfig | None = None) -> Iterator[Scene]:
    """Scenes 0..n-1 of the dataset with master ``seed``; scene i uses ``scene_seed(seed, i)``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"the number of scenes must be a positive integer, got {n!r}.")
    _check_seed(seed)
    check_size(size)
    return (generate_scene(scene_seed(seed, i), size, config) for i in range(int(n)))
