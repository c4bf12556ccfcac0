"""merge_regions: the exact rule on hand-made grids, tie-breaking, edges, and equality with the
dict-scan reference and the pure-Python fallback on random grids (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unsamv2.errors import InputError
from unsamv2.mining import merging
from unsamv2.mining.conquer import merge_regions, merge_regions_reference


def _python(features, thresholds, min_size):
    feats, thr, ms = merging._check_inputs(features, thresholds, min_size)
    roots, live = merging._merge_python(feats, thr)
    h, w = feats.shape[:2]
    return [merging._level_from_roots(r, int(n), ms, h, w) for r, n in zip(roots, live, strict=True)]


def _same(a, b):
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_two_planted_regions_split_and_stay_split():
    f = np.zeros((2, 4, 2))
    f[:, :2] = (1.0, 0.0)
    f[:, 2:] = (0.0, 1.0)
    levels = merge_regions(f, thresholds=(0.9, 0.5), min_size=4)
    assert [lv.shape for lv in levels] == [(2, 2, 4), (2, 2, 4)]
    left = np.zeros((2, 4), bool)
    left[:, :2] = True
    np.testing.assert_array_equal(levels[0][0], left)  # ordered by first patch (row-major)
    np.testing.assert_array_equal(levels[0][1], ~left)
    np.testing.assert_array_equal(levels[1], levels[0])


def test_single_region_grid_gives_empty_levels():
    f = np.ones((3, 5, 4))
    levels = merge_regions(f, thresholds=(0.9, 0.5), min_size=1)
    assert [lv.shape for lv in levels] == [(0, 3, 5), (0, 3, 5)]
    assert [lv.shape for lv in merge_regions(np.ones((1, 1, 3)), (0.5,), 1)] == [(0, 1, 1)]


def test_min_size_is_inclusive():
    f = np.zeros((1, 7, 2))
    f[0, :4] = (1.0, 0.0)  # 4 patches
    f[0, 4:] = (0.0, 1.0)  # 3 patches
    (level,) = merge_regions(f, thresholds=(0.99,), min_size=4)
    assert level.shape == (1, 1, 7) and level[0, 0, :4].all() and not level[0, 0, 4:].any()
    (level,) = merge_regions(f, thresholds=(0.99,), min_size=3)
    assert level.shape[0] == 2
    (level,) = merge_regions(f, thresholds=(0.99,), min_size=5)
    assert level.shape == (0, 1, 7)


def test_ties_break_towards_the_smallest_region_ids():
    # cos(p0, p1) == cos(p1, p2) exactly; whichever pair merges first blocks the other.
    f = np.array([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    (level,) = merge_regions(f, thresholds=(0.7,), min_size=1)
    np.testing.assert_array_equal(level[:, 0], [[True, True, False], [False, False, True]])
    (level,) = merge_regions(f[:, ::-1], thresholds=(0.7,), min_size=1)  # mirrored: ids decide
    np.testing.assert_array_equal(level[:, 0], [[True, True, False], [False, False, True]])
    (level,) = merge_regions(f.transpose(1, 0, 2), thresholds=(0.7,), min_size=1)
    np.testing.assert_array_equal(level[:, :, 0], [[True, True, False], [False, False, True]])


def test_similarity_uses_mean_features_not_single_links():
    # p1 is close to both neighbours, but the merged (p0+p1) mean is far from p2.
    f = np.array([[[1.0, 0.0], [1.0, 0.9], [0.0, 1.0]]])
    (level,) = merge_regions(f, thresholds=(0.7,), min_size=1)
    assert level.shape[0] == 2 and level[0, 0].tolist() == [True, True, False]


def test_threshold_above_one_merges_nothing_and_order_is_kept():
    f = np.random.default_rng(0).normal(size=(3, 3, 4))
    none, merged, again = merge_regions(f, thresholds=(1.5, -1.0, 0.9), min_size=1)
    assert none.shape == (9, 3, 3) and (none.sum(axis=(1, 2)) == 1).all()
    assert merged.shape == (0, 3, 3)  # everything merged into one region: no neighbour left
    assert again.shape == (0, 3, 3)


def test_zero_features_have_zero_similarity():
    f = np.zeros((1, 3, 2))
    f[0, 2] = (1.0, 0.0)
    (level,) = merge_regions(f, thresholds=(0.0,), min_size=1)
    assert level.shape[0] == 0  # cos 0 >= 0 merges everything
    (level,) = merge_regions(f, thresholds=(1e-9,), min_size=1)
    assert level.shape[0] == 3


@pytest.mark.parametrize(
    "features, kwargs",
    [
        (np.full((2, 2, 3), np.nan), {}),
        (np.ones((4, 4)), {}),
        (np.ones((2, 2, 3)), {"min_size": 0}),
        (np.ones((2, 2, 3)), {"thresholds": (float("inf"),)}),
        (np.ones((2, 2, 3)), {"thresholds": ("a",)}),
    ],
)
def test_bad_inputs_raise_one_sentence(features, kwargs):
    with pytest.raises(InputError):
        merge_regions(features, **kwargs)


def _piecewise(side, regions, noise, seed, dim=64, dtype=np.float32):
    """Smooth piecewise features: Voronoi cells with one random vector each, plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, side, size=(regions, 2))
    yy, xx = np.mgrid[:side, :side]
    label = ((yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2).argmin(-1)
    f = rng.normal(size=(regions, dim))[label] + noise * rng.normal(size=(side, side, dim))
    return f.astype(dtype)


@pytest.mark.parametrize(
    "side, regions, noise, seed",
    [(24, 12, 0.3, 0), (24, 12, 0.3, 1), (24, 4, 0.05, 2), (24, 3, 0.0, 3), (32, 4, 0.05, 4)],
)
def test_piecewise_features_match_reference(side, regions, noise, seed):
    # Few large regions plus noise: long region borders and near-equal similarities, the case
    # that defeated the kernel's lazy bounds before batches were inherited.
    f = _piecewise(side, regions, noise, seed)
    fast = merge_regions(f)
    assert _same(fast, merge_regions_reference(f))
    assert _same(fast, _python(f, merging.DEFAULT_THRESHOLDS, 4))
    assert fast[-1].shape[0] > 0


def test_float32_features_are_read_in_place_and_exactly():
    f = _piecewise(16, 4, 0.3, 5, dim=24)
    before = f.copy()
    fast = merge_regions(f, (0.95, 0.9, 0.5), 2)
    np.testing.assert_array_equal(f, before)  # the kernel never writes to the caller's array
    assert _same(fast, merge_regions(f.astype(np.float64), (0.95, 0.9, 0.5), 2))
    assert _same(fast, merge_regions_reference(f, (0.95, 0.9, 0.5), 2))


def test_realistic_grid_matches_reference():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(4, 16))
    labels = (np.add.outer(np.arange(12) // 4, np.arange(12) // 6) % 4)
    f = base[labels] + 0.4 * rng.normal(size=(12, 12, 16))
    fast = merge_regions(f)
    assert _same(fast, merge_regions_reference(f))
    assert sum(lv.shape[0] for lv in fast) > 0


grids = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1))


@settings(max_examples=150, deadline=None)
@given(
    grid=grids,
    integer=st.booleans(),
    thresholds=st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=1, max_size=4),
    min_size=st.integers(1, 4),
)
def test_fast_equals_reference_and_fallback(grid, integer, thresholds, min_size):
    h, w, d, seed = grid
    rng = np.random.default_rng(seed)
    f = rng.integers(-2, 3, size=(h, w, d)).astype(float) if integer else rng.normal(size=(h, w, d))
    fast = merge_regions(f, thresholds, min_size)
    assert _same(fast, merge_regions_reference(f, thresholds, min_size))
    assert _same(fast, _python(f, thresholds, min_size))
    for level in fast:  # disjoint, 4-connected, >= min_size
        assert level.sum(axis=0).max(initial=0) <= 1
        assert all(m.sum() >= min_size for m in level)
        from scipy import ndimage

        assert all(ndimage.label(m)[1] == 1 for m in level)
