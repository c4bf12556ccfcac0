"""MaskCut: planted structures, the eigen-solve against a dense generalized solver, the
foreground rules, rounds and filters."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from unsamv2.errors import InputError
from unsamv2.mining.maskcut import (
    EPS_AFFINITY,
    binary_affinity,
    foreground_component,
    maskcut,
    second_eigenvector,
)


def planted(shape=(16, 16), boxes=((5, 5, 11, 11),), dim=8, noise=0.15, seed=0):
    """Features with a background direction and one direction per planted box (y0, x0, y1, x1)."""
    rng = np.random.default_rng(seed)
    dirs = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    f = np.tile(dirs[0], shape + (1,))
    truth = []
    for k, (y0, x0, y1, x1) in enumerate(boxes, start=1):
        f[y0:y1, x0:x1] = dirs[k]
        m = np.zeros(shape, bool)
        m[y0:y1, x0:x1] = True
        truth.append(m)
    return (f + noise * rng.normal(size=f.shape)).astype(np.float32), truth


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_planted_object_is_found_first_and_not_the_background():
    f, (obj,) = planted()
    res = maskcut(f, tau=0.2, rounds=1)
    assert res.masks.shape == (1, 16, 16) and res.rounds == (0,)
    assert iou(res.masks[0], obj) > 0.95


def test_eigenvector_matches_dense_generalized_solver():
    f, _ = planted(shape=(9, 9), boxes=((2, 2, 6, 7),), noise=0.3, seed=1)
    b = binary_affinity(f, 0.2)
    x = second_eigenvector(b)
    w = b.numpy().astype(np.float64)
    w = w + EPS_AFFINITY * (1 - w)
    d = np.diag(w.sum(1))
    _, vecs = scipy.linalg.eigh(d - w, d, subset_by_index=[1, 1])
    ref = vecs[:, 0]
    corr = abs(x @ ref) / (np.linalg.norm(x) * np.linalg.norm(ref))
    assert corr > 0.9999
    assert x[np.argmax(np.abs(x))] > 0  # sign convention


def test_rounds_find_two_disjoint_objects_and_drop_tiny_ones():
    f, truth = planted(boxes=((1, 1, 7, 7), (9, 9, 15, 15), (0, 15, 1, 16)), noise=0.1)
    res = maskcut(f, tau=0.2, rounds=4)
    assert res.masks.sum(axis=0).max() <= 1  # disjoint
    best = [max(iou(m, t) for m in res.masks) for t in truth[:2]]
    assert min(best) > 0.9
    assert all(m.mean() > 0.01 for m in res.masks)  # the 1-patch box (0.4%) never comes out


def test_zero_masking_mode_runs_and_finds_the_first_object():
    f, truth = planted(boxes=((1, 1, 7, 7), (9, 9, 15, 15)), noise=0.1)
    res = maskcut(f, tau=0.2, rounds=3, masking="zero")
    assert len(res.masks) >= 1 and max(iou(res.masks[0], t) for t in truth) > 0.9


def test_foreground_flips_when_three_corners_are_foreground():
    x = np.zeros(25)
    x[[0, 4, 20]] = 1.0  # three corners high
    x[12] = 0.5  # centre above the mean
    comp = foreground_component(x, (5, 5))
    # flipped: foreground = everything at or below the mean; the seed is argmin (patch 1)
    assert comp[0, 1] and not comp[0, 0] and not comp[2, 2]


def test_seed_component_only():
    x = np.zeros(25)
    x[[6, 18]] = 1.0  # two separate foreground patches, 6 is the seed (first argmax)
    comp = foreground_component(x, (5, 5))
    assert comp.sum() == 1 and comp[1, 1]


@pytest.mark.parametrize("kwargs", [{"tau": 1.0}, {"tau": -0.1}, {"rounds": 0}, {"masking": "x"}])
def test_bad_arguments(kwargs):
    f, _ = planted()
    with pytest.raises(InputError):
        maskcut(f, **kwargs)


def test_nan_features_raise():
    f, _ = planted()
    f[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        maskcut(f)


def _scripted_rounds(monkeypatch, raws):
    """Replace the cut by a script of raw masks; record the taken/painted patches each round saw."""
    import unsamv2.mining.maskcut as mc

    seen = []

    def fake_cut(full, shape, taken, masking, eps):
        seen.append(taken.copy())
        return raws[len(seen) - 1].copy()

    monkeypatch.setattr(mc, "_cut", fake_cut)
    return seen


def _rect(y0, y1, x0, x1, shape=(20, 20)):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_cutler_round_rule_keeps_a_dropped_rounds_patches_and_compares_with_the_previous_round(monkeypatch):
    a, b = _rect(0, 10, 0, 10), _rect(0, 10, 2, 12)  # IoU(a, b) = 80 / 120 > 0.5
    feats = np.random.default_rng(0).random((20, 20, 4)).astype(np.float32)
    seen = _scripted_rounds(monkeypatch, [a, b, b])
    got = maskcut(feats, 0.2, 3, round_rule="cutler", masking="zero")
    assert got.rounds == (0, 2)  # round 1 dropped (IoU with round 0); round 2 repeats b, compared with
    assert np.array_equal(got.masks[1], b & ~a)  # the dropped (empty) round 1: kept, minus earlier outputs
    assert [s.sum() for s in seen] == [0, 100, 100]  # b's patches were never painted
    seen = _scripted_rounds(monkeypatch, [a, b, b])
    strict = maskcut(feats, 0.2, 3, round_rule="strict", masking="zero")
    assert strict.rounds == (0,) and [s.sum() for s in seen] == [0, 100, 120]  # dropped b taken too


def test_cutler_round_rule_has_no_area_rule_in_the_first_round(monkeypatch):
    tiny = _rect(0, 2, 0, 1)  # 0.5 % of the grid
    feats = np.random.default_rng(0).random((20, 20, 4)).astype(np.float32)
    _scripted_rounds(monkeypatch, [tiny, tiny])
    assert maskcut(feats, 0.2, 1, round_rule="cutler").rounds == (0,)
    _scripted_rounds(monkeypatch, [tiny, tiny])
    assert maskcut(feats, 0.2, 1, round_rule="strict").rounds == ()
    with pytest.raises(InputError, match="round_rule"):
        maskcut(feats, 0.2, 1, round_rule="other")
