"""Procedural scenes: determinism, hierarchy invariants, granularity rule, honesty of the pictures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unsamv2.errors import InputError
from unsamv2.mining.granularity import granularity_scores
from unsamv2.scenes import Scene, SceneConfig, generate_scene, iter_scenes, scene_seed

SIZE = 256


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return list(iter_scenes(20, seed=11, size=SIZE))


def check_hierarchy(scene: Scene) -> None:
    """Every invariant the rest of the project relies on, for one scene."""
    h, w = scene.height, scene.width
    by_id = {n.node_id: n for n in scene.nodes}
    assert sorted(by_id) == list(range(1, len(scene.nodes) + 1))
    objects = np.zeros((h, w), dtype=np.int32)
    min_part = max(1, int(scene.config.min_part_area * h * w))
    for node in scene.nodes:
        assert node.mask.shape == (h, w) and node.mask.dtype == bool
        assert node.area >= min_part, "no empty or tiny nodes"
        if node.parent_id is None:
            assert node.level == 0 and node.object_id == node.node_id
            assert node.area >= int(scene.config.min_object_area * h * w)
            objects += node.mask
        else:
            parent = by_id[node.parent_id]
            assert parent.node_id < node.node_id
            assert node.level == parent.level + 1
            assert node.object_id == parent.object_id
            assert not np.any(node.mask & ~parent.mask), "a child lies inside its parent"
        kids = scene.children(node.node_id)
        if kids:
            assert len(kids) >= 2, "a single child would duplicate its parent"
            cover = np.sum([k.mask for k in kids], axis=0)
            assert cover.max() == 1, "siblings are disjoint"
            assert np.array_equal(cover > 0, node.mask), "children tile their parent"
    assert objects.max() <= 1, "visible object masks never overlap"


@pytest.mark.slow
def test_hierarchy_invariants_over_twenty_scenes(scenes):
    for scene in scenes:
        assert scene.image.shape == (SIZE, SIZE, 3) and scene.image.dtype == np.uint8
        assert len(scene.objects()) >= 1
        check_hierarchy(scene)


def test_objects_reach_three_and_four_levels(scenes):
    deepest = [max(n.level for n in s.group(o.node_id)) for s in scenes for o in s.objects()]
    assert sum(d >= 2 for d in deepest) >= 10, "many objects have sub-parts (three levels)"
    assert any(d == 3 for d in deepest), "some objects have sub-sub-parts"
    assert sum(len(s.objects()) for s in scenes) >= 3 * len(scenes), "several objects per image"


def test_granularity_rule_per_object_group(scenes):
    for scene in scenes:
        for obj in scene.objects():
            group = list(scene.group(obj.node_id))
            expected = granularity_scores([n.area for n in group])
            np.testing.assert_allclose([n.granularity for n in group], expected, rtol=0, atol=1e-12)
            assert obj.granularity == pytest.approx(1.0)
            if len(group) > 1:
                assert min(n.granularity for n in group) == pytest.approx(0.1)
                smallest = min(group, key=lambda n: n.area)
                assert smallest.granularity == pytest.approx(0.1)


def test_same_seed_same_scene_and_different_seed_different_scene():
    a, b, c = generate_scene(5, 128), generate_scene(5, 128), generate_scene(6, 128)
    assert np.array_equal(a.image, b.image)
    assert len(a.nodes) == len(b.nodes)
    for x, y in zip(a.nodes, b.nodes, strict=True):
        assert (x.node_id, x.parent_id, x.level, x.granularity) == (y.node_id, y.parent_id, y.level, y.granularity)
        assert np.array_equal(x.mask, y.mask)
    assert not np.array_equal(a.image, c.image)


def test_iter_scenes_prefix_is_stable_and_seeds_are_derived():
    short = list(iter_scenes(2, seed=3, size=96))
    long = list(iter_scenes(4, seed=3, size=96))
    for x, y in zip(short, long[:2], strict=True):
        assert x.seed == y.seed and np.array_equal(x.image, y.image)
    assert [s.seed for s in long] == [scene_seed(3, i) for i in range(4)]
    assert len({s.seed for s in long}) == 4
    assert 0 <= scene_seed(3, 0) < 2**53


def test_later_objects_occlude_earlier_ones_within_the_limit():
    """Placement makes objects overlap (often) but never hides more than ``occlusion`` of an object."""
    from unsamv2.scenes.compose import _window, paint_labels, place_objects
    from unsamv2.scenes.objects import build_object

    cfg = SceneConfig()
    partly_hidden, total = 0, 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        models = [build_object(rng, cfg, SIZE) for _ in range(5)]
        placed = place_objects(rng, models, SIZE, cfg.occlusion)
        labels, _ = paint_labels(placed, SIZE)
        owner = np.zeros((SIZE, SIZE), dtype=np.int32)  # 1 + index of the object seen at each pixel
        for i, p in enumerate(placed):
            img, loc = _window(p.top, p.left, p.model.mask.shape, SIZE)
            owner[img][p.model.mask[loc]] = i + 1
        for i, p in enumerate(placed):
            img, loc = _window(p.top, p.left, p.model.mask.shape, SIZE)
            full = p.model.mask[loc]
            seen = owner[img][full]
            total += 1
            partly_hidden += bool(np.any(seen != i + 1))
            assert np.sum(seen != i + 1) <= cfg.occlusion * full.sum(), "later objects hide at most the limit"
        assert np.array_equal(labels > 0, owner > 0)
    assert partly_hidden >= total // 4


def _leaf_means(scene: Scene) -> dict[int, np.ndarray]:
    return {n.node_id: scene.image[n.mask].mean(axis=0) for n in scene.nodes if not scene.children(n.node_id)}


def test_scenes_are_not_trivially_separable(scenes):
    """Textured, lit regions (not flat fills), and some sibling parts of nearly the same colour."""
    close_siblings = 0
    for scene in scenes:
        means = _leaf_means(scene)
        for node in scene.nodes:
            leaves = [k for k in scene.children(node.node_id) if k.node_id in means]
            for i, a in enumerate(leaves):
                for b in leaves[i + 1 :]:
                    close_siblings += np.abs(means[a.node_id] - means[b.node_id]).max() < 12
        stds = [scene.image[n.mask].std(axis=0).mean() for n in scene.nodes if n.node_id in means]
        assert np.median(stds) > 3, "region pixels vary (texture, shading, noise)"
        background = ~np.any([o.mask for o in scene.objects()], axis=0)
        assert scene.image[background].std(axis=0).mean() > 5, "the background is not a flat colour"
    assert close_siblings >= 5


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**40), size=st.sampled_from([64, 96, 160]))
def test_invariants_hold_for_any_seed_and_size(seed, size):
    scene = generate_scene(seed, size)
    assert scene.image.shape == (size, size, 3)
    check_hierarchy(scene)


def test_config_knobs_change_the_scene():
    flat = SceneConfig(levels=2, objects=(2, 2), clutter=0, texture_kinds=("flat",), pixel_noise=0.0)
    scene = generate_scene(1, 128, flat)
    assert max(n.level for n in scene.nodes) <= 1
    assert 1 <= len(scene.objects()) <= 2
    check_hierarchy(scene)


@pytest.mark.parametrize(
    "call",
    [
        lambda: generate_scene(-1, 128),
        lambda: generate_scene(0, 8),
        lambda: generate_scene(0, 128, config="big"),
        lambda: list(iter_scenes(0, 0)),
        lambda: SceneConfig(objects=(4, 2)),
        lambda: SceneConfig(levels=7),
        lambda: SceneConfig(texture_kinds=("plaid",)),
        lambda: SceneConfig(shadows=3.0),
    ],
)
def test_bad_arguments_raise_one_sentence_input_errors(call):
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message
