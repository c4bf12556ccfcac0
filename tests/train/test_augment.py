"""Joint augmentation: the inference input without augmentation, and image and masks moving together."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unsamv2.train.augment import AugmentParams, affine_theta, augment_and_resize, draw_params
from unsamv2.train.config import AugmentConfig


def scene():
    """A 90 x 140 image (not square) with a red rectangle and a green disc, and their masks."""
    h, w = 90, 140
    image = np.full((h, w, 3), 40, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    rect = (yy >= 10) & (yy < 40) & (xx >= 20) & (xx < 70)
    disc = (yy - 60) ** 2 + (xx - 100) ** 2 < 18**2
    image[rect] = (230, 20, 20)
    image[disc] = (20, 230, 20)
    return image, np.stack([rect, disc])


def test_without_augmentation_the_image_is_the_inference_input():
    from unsamv2.model.predictor import IMAGE_MEAN, IMAGE_STD, preprocess_image

    image, masks = scene()
    img, out = augment_and_resize(image, masks, 64, AugmentParams())
    mean, std = torch.tensor(IMAGE_MEAN)[:, None, None], torch.tensor(IMAGE_STD)[:, None, None]
    assert torch.equal((img - mean) / std, preprocess_image(image, 64)[0])
    assert out.shape == (2, 64, 64) and out.dtype == torch.bool
    assert draw_params(AugmentConfig(enabled=False), np.random.default_rng(0)) == AugmentParams()


def test_flip_is_exact():
    image, masks = scene()
    plain_img, plain_masks = augment_and_resize(image, masks, 64, AugmentParams())
    img, out = augment_and_resize(image, masks, 64, AugmentParams(flip=True))
    assert torch.allclose(img, plain_img.flip(-1), atol=1e-5)
    assert torch.equal(out, plain_masks.flip(-1))


@pytest.mark.parametrize("seed", range(5))
def test_image_and_masks_move_together(seed):
    image, masks = scene()
    params = draw_params(AugmentConfig(jitter=(), grayscale=0.0), np.random.default_rng(seed))
    img, out = augment_and_resize(image, masks, 128, params)
    red = (img[0] > 0.7) & (img[1] < 0.3)
    green = (img[1] > 0.7) & (img[0] < 0.3)
    for colour, mask in ((red, out[0]), (green, out[1])):
        inter, union = (colour & mask).sum().item(), (colour | mask).sum().item()
        assert union > 0 and inter / union > 0.85


def test_affine_after_squash_equals_affine_before_it():
    """The conjugated warp at S x S matches "warp the original, then resize" (the reference order)."""
    image, masks = scene()
    params = AugmentParams(flip=True, angle=20.0, shear=-12.0)
    _, fast = augment_and_resize(image, masks, 128, params)
    # reference: warp at the original size with the unconjugated map, then squash
    h, w = image.shape[:2]
    theta = affine_theta(params, h, w).float()
    m = torch.from_numpy(masks).float()[None]
    grid = F.affine_grid(theta[None], [1, 2, h, w], align_corners=False)
    warped = F.grid_sample(m, grid, align_corners=False)
    slow = F.interpolate(warped, (128, 128), mode="bilinear", antialias=True, align_corners=False)[0] > 0.5
    for k in range(2):
        inter, union = (fast[k] & slow[k]).sum().item(), (fast[k] | slow[k]).sum().item()
        assert inter / union > 0.95


def test_colour_jitter_and_grayscale():
    image, masks = scene()
    plain, _ = augment_and_resize(image, masks, 32, AugmentParams())
    grey, out = augment_and_resize(image, masks, 32, AugmentParams(grayscale=True))
    assert torch.allclose(grey[0], grey[1]) and torch.allclose(grey[1], grey[2])
    bright, _ = augment_and_resize(image, masks, 32, AugmentParams(jitter=(((0, 1, 2), (1.1, 1.0, 1.0)),)))
    assert torch.allclose(bright, (plain * 1.1).clamp(0, 1), atol=1e-6)
    assert out.shape == (2, 32, 32)


def test_draws_are_reproducible_and_in_range():
    cfg = AugmentConfig()
    a = [draw_params(cfg, np.random.default_rng(s)) for s in range(50)]
    assert a == [draw_params(cfg, np.random.default_rng(s)) for s in range(50)]
    assert all(abs(p.angle) <= 25 and abs(p.shear) <= 20 for p in a)
    assert any(p.flip for p in a) and not all(p.flip for p in a)
    assert all(len(p.jitter) == 2 and all(0.9 <= f[0] <= 1.1 for _, f in p.jitter) for p in a)


def test_affine_is_skipped_when_a_mask_would_leave_the_image():
    image = np.zeros((64, 64, 3), np.uint8)
    masks = np.zeros((1, 64, 64), bool)
    masks[0, 0:3, 0:3] = True  # a corner: a 25 degree rotation about the centre moves it out
    params = AugmentParams(flip=True, angle=25.0, shear=0.0)
    img, out = augment_and_resize(image, masks, 64, params)
    _, flipped = augment_and_resize(image, masks, 64, AugmentParams(flip=True))
    assert out[0].any() and torch.equal(out, flipped)
    assert torch.allclose(img, torch.zeros_like(img))  # no fill came in: the image was only flipped


def test_fill_is_the_mean_colour():
    from unsamv2.train.augment import FILL

    image = np.zeros((64, 64, 3), np.uint8)
    masks = np.ones((1, 64, 64), bool)
    img, _ = augment_and_resize(image, masks, 64, AugmentParams(angle=20.0))
    corner = img[:, 0, 0]
    assert torch.allclose(corner, torch.tensor(FILL), atol=1e-4)
