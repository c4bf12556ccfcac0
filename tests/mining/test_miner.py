"""MinerConfig, Miner end to end (descriptor and a tiny DINO), records, determinism, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unsamv2.data.rle import decode_rle
from unsamv2.errors import InputError
from unsamv2.mining import Miner, MinerConfig, to_mask_records

FAST = dict(divide_long_side=480, conquer_long_side=256, rounds=3)


def toy_image(size=160):
    """Grey background, a red disc split into a red and a yellow half, a blue square."""
    yy, xx = np.mgrid[:size, :size]
    img = np.full((size, size, 3), 128, np.uint8)
    disc = (yy - 0.45 * size) ** 2 + (xx - 0.35 * size) ** 2 <= (0.25 * size) ** 2
    img[disc] = (200, 30, 30)
    img[disc & (xx > 0.35 * size)] = (230, 210, 40)
    square = (yy > 0.6 * size) & (yy < 0.9 * size) & (xx > 0.65 * size) & (xx < 0.95 * size)
    img[square] = (30, 60, 200)
    rng = np.random.default_rng(0)
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return img, disc, square


def test_config_validation_and_hash():
    a, b = MinerConfig(), MinerConfig()
    assert a.config_hash() == b.config_hash() and len(a.config_hash()) == 16
    assert MinerConfig(device="cuda").config_hash() == a.config_hash()
    assert MinerConfig(tau=0.15).config_hash() != a.config_hash()
    assert MinerConfig.from_dict(a.to_dict()) == a
    assert MinerConfig(thresholds=[0.9, 0.5]).thresholds == (0.9, 0.5)
    assert a.effective_patch_size == 16 and a.effective_divide_long_side == 960
    for bad in [dict(backbone="resnet"), dict(backbone="dinov2"), dict(tau=1.5), dict(rounds=0),
                dict(coverage=2.0), dict(thresholds=()), dict(masking="x"), dict(device="tpu"),
                dict(patch_size=1), dict(min_region_patches=0)]:
        with pytest.raises(InputError):
            MinerConfig(**bad)
    with pytest.raises(InputError, match="unknown MinerConfig fields"):
        MinerConfig.from_dict({"taus": 0.1})


def test_miner_end_to_end_on_a_toy_image():
    img, disc, square = toy_image()
    miner = Miner(MinerConfig(**FAST))
    mined = miner.mine(img)
    assert mined, "nothing mined"
    again = Miner(MinerConfig(**FAST)).mine(img)
    assert len(again) == len(mined) and all(
        np.array_equal(x.mask, y.mask) and x.granularity == y.granularity for x, y in zip(mined, again, strict=True)
    )
    for m in mined:
        assert m.mask.shape == img.shape[:2] and m.mask.dtype == bool
        assert m.area == m.mask.sum() > 0 and 0.1 <= m.granularity <= 1.0
        assert m.origin in ("divide", "conquer", "part") and 0.0 <= m.score <= 1.0
        x, y, w, h = m.bbox
        ys, xs = np.nonzero(m.mask)
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    groups = {}
    for m in mined:
        groups.setdefault(m.instance_id, []).append(m)
    scene_id = max(groups)  # the scene group comes last: the whole image's regions, without the image
    assert all(m.is_part and m.origin == "conquer" and m.granularity < 1.0 for m in groups.pop(scene_id))
    assert groups, "no instance group"
    for members in groups.values():
        inst = [m for m in members if not m.is_part]
        assert len(inst) == 1 and inst[0].origin == "divide"
        if len(members) > 1:
            assert min(m.granularity for m in members) == pytest.approx(0.1)
        assert max(m.granularity for m in members) == pytest.approx(1.0)
    best = {name: max((m.mask & t).sum() / (m.mask | t).sum() for m in mined)
            for name, t in (("disc", disc), ("square", square))}
    assert best["disc"] > 0.6 and best["square"] > 0.6, best


def test_to_mask_records_round_trip():
    img, _, _ = toy_image()
    mined = Miner(MinerConfig(**FAST)).mine(img)
    records = to_mask_records(mined)
    assert len(records) == len(mined) and to_mask_records([]) == []
    for rec, m in zip(records, mined, strict=True):
        np.testing.assert_array_equal(decode_rle(rec["rle"], *img.shape[:2]), m.mask)
        assert rec["origin"] == m.origin and rec["is_part"] == m.is_part and rec["area"] == m.area


@pytest.mark.parametrize("shape", [(32, 400), (400, 32), (33, 33)])
def test_thin_and_tiny_images_mine_without_error(shape):
    rng = np.random.default_rng(0)
    img = (rng.random((*shape, 3)) * 255).astype(np.uint8)
    img[:, : shape[1] // 2] = (200, 0, 0)
    mined = Miner(MinerConfig(**FAST)).mine(img)
    assert mined and all(m.mask.shape == shape for m in mined)


def test_no_divide_candidate_gives_no_masks():
    img, _, _ = toy_image(96)
    miner = Miner(MinerConfig(**FAST, maskcut_min_area=0.99, scene_group=False))  # every MaskCut mask is dropped
    assert miner.divide(img).shape == (0, 96, 96)
    assert miner.mine(img) == []  # with the scene group on, only its regions would remain (test_divide.py)
    flat = np.full((96, 128, 3), 77, np.uint8)
    assert isinstance(Miner(MinerConfig(**FAST)).mine(flat), list)


class _NaNBackbone:
    name, patch_size = "nan", 16

    def features(self, image, long_side):
        return np.full((8, 8, 4), np.nan, np.float32)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((64, 64), np.uint8), "RGB"),
        (np.zeros((64, 64, 4), np.uint8), "RGB"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((10, 64, 3), np.uint8), "smaller than the minimum"),
    ],
)
def test_bad_images_raise_one_sentence(bad, match):
    with pytest.raises(InputError, match=match):
        Miner(MinerConfig(**FAST)).mine(bad)


def test_nan_features_raise():
    img, _, _ = toy_image()
    with pytest.raises(InputError, match="NaN"):
        Miner(MinerConfig(**FAST), backbone=_NaNBackbone()).mine(img)


def test_miner_with_a_tiny_dinov3(tmp_path):
    from unsamv2.mining.vit import DinoViT, ViTSpec

    torch.manual_seed(0)
    model = DinoViT(ViTSpec("dinov3", 32, 2, 4, 16, "mlp", 64, 4, 0, mask_k_bias=True, norm_eps=1e-5))
    path = str(tmp_path / "dinov3_tiny.pth")
    torch.save(model.state_dict(), path)
    cfg = MinerConfig(backbone="dinov3", backbone_weights=path, divide_long_side=160,
                      conquer_long_side=128)
    img, _, _ = toy_image(96)
    mined = Miner(cfg).mine(img)
    assert mined and all(m.mask.shape == (96, 96) and 0.1 <= m.granularity <= 1.0 for m in mined)
    with pytest.raises(InputError, match="patch_size=14"):
        Miner(MinerConfig(backbone="dinov3", backbone_weights=path, patch_size=14))


class _ConstantBackbone:
    """Every patch identical: conquer merges everything into one region, so no conquer mask."""

    name, patch_size = "constant", 16

    def features(self, image, long_side):
        from unsamv2.mining.features import grid_shape

        return np.ones((*grid_shape(image.shape[0], image.shape[1], long_side, 16), 4), np.float32)


class _FixedDivide(Miner):
    def __init__(self, candidates):
        super().__init__(MinerConfig(**FAST, scene_group=False, refine=False), backbone=_ConstantBackbone())
        self.candidates = candidates

    def divide_views(self, image):
        from unsamv2.mining.divide import DivideResult

        return DivideResult(self.candidates, np.ones(len(self.candidates)))


def test_divide_parts_inside_an_instance_become_parts_with_granularity():
    img, disc, square = toy_image()
    part = disc.copy()
    part[:, : int(0.35 * 160)] = False  # the right half of the disc
    mined = _FixedDivide(np.stack([disc, part, square])).mine(img)
    by_group = {}
    for m in mined:
        by_group.setdefault(m.instance_id, []).append(m)
    assert len(by_group) == 2  # the disc (with its parts) and the square
    disc_group = next(g for g in by_group.values() if any(np.array_equal(m.mask, disc) for m in g))
    origins = sorted((m.origin, m.is_part) for m in disc_group)
    assert origins == [("divide", False), ("part", True)]
    inst = next(m for m in disc_group if not m.is_part)
    prt = next(m for m in disc_group if m.is_part)
    assert inst.granularity == 1.0 and prt.granularity == pytest.approx(0.1)
    assert np.array_equal(prt.mask, part)
    # two near-duplicate candidates contain each other, so neither is an instance (docs/architecture.md#mining-relation)
    duplicate = disc.copy()
    duplicate[disc.nonzero()[0][0], :] = False
    assert _FixedDivide(np.stack([disc, duplicate])).mine(img) == []
