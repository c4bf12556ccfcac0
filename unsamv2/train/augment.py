"""Joint image + mask augmentation and the resize to the model's square input (docs/architecture.md#training).

Geometry (the official training transforms, in their order): horizontal flip, then a rotation
and an x-shear about the image centre, then the resize to the model's square S x S input
(SAM-2's image predictor squashes every image to S x S, ignoring the aspect ratio; training does
the same so that it sees what inference sees). We resize first, with the same antialiased
bilinear resize as :func:`unsamv2.model.predictor.preprocess_image`, and then apply the flip +
affine *conjugated by the anisotropic resize* in one ``grid_sample``; that is the same geometric
map as "affine on the original, then resize", for the image and for every mask. Without
augmentation the image is exactly the inference input. Pixels brought in from outside the
image get the ImageNet mean colour (image) and background (masks). As in SAM-2's training
transforms, when the affine would push a whole mask out of the image, the sample keeps only
its flip.

Photometry after geometry: colour jitters (brightness, contrast, saturation factors in
``1 +- v``, in a random order) and a random grayscale between the first and the second jitter.

Every random choice comes from the ``numpy.random.Generator`` passed in, so a sample's
augmentation is a pure function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from unsamv2.train.config import AugmentConfig

FILL = (0.485, 0.456, 0.406)  # pixels brought in from outside the image: the ImageNet mean colour


@dataclass(frozen=True)
class AugmentParams:
    """The random draws of one sample: ``flip``; ``angle`` / ``shear`` in degrees; ``jitter``:
    per jitter, (order of the three adjustments, (brightness, contrast, saturation) factors);
    ``grayscale``."""

    flip: bool = False
    angle: float = 0.0
    shear: float = 0.0
    jitter: tuple[tuple[tuple[int, ...], tuple[float, float, float]], ...] = ()
    grayscale: bool = False

    @property
    def is_identity_geometry(self) -> bool:
        return not self.flip and self.angle == 0.0 and self.shear == 0.0


def draw_params(aug: AugmentConfig, rng: np.random.Generator) -> AugmentParams:
    """Draw one sample's augmentation (always the same number of draws, whatever the values)."""
    if not aug.enabled:
        return AugmentParams()
    flip = bool(rng.random() < aug.hflip)
    angle = float(rng.uniform(-aug.degrees, aug.degrees))
    shear = float(rng.uniform(-aug.shear, aug.shear))
    jitter: list[tuple[tuple[int, ...], tuple[float, float, float]]] = []
    for ranges in aug.jitter:
        order = tuple(int(i) for i in rng.permutation(3))
        brightness, contrast, saturation = (float(rng.uniform(1.0 - v, 1.0 + v)) for v in ranges)
        jitter.append((order, (brightness, contrast, saturation)))
    grayscale = bool(rng.random() < aug.grayscale)
    return AugmentParams(flip, angle, shear, tuple(jitter), grayscale)


def affine_theta(params: AugmentParams, height: int, width: int) -> torch.Tensor:
    """(2, 3) float64 ``theta`` for :func:`torch.nn.functional.affine_grid`: output normalised
    coordinates (x, y) in [-1, 1] -> input normalised coordinates, for the flip + rotation +
    shear of an (height, width) image applied after the squash to a square.

    In centred pixel coordinates of the original image the forward map is
    ``T = R(angle) @ Shear(shear) @ Flip``; normalised coordinates relate to them by
    ``D = diag(width / 2, height / 2)``, so the sampling map is ``D^-1 T^-1 D``.
    """
    a, s = math.radians(params.angle), math.radians(params.shear)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shear = np.array([[1.0, math.tan(s)], [0.0, 1.0]])
    flip = np.diag([-1.0 if params.flip else 1.0, 1.0])
    forward = rot @ shear @ flip
    d = np.diag([width / 2.0, height / 2.0])
    sample = np.linalg.inv(d) @ np.linalg.inv(forward) @ d
    return torch.tensor(np.concatenate([sample, np.zeros((2, 1))], axis=1))


def _warp(tensor: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(C, S, S) float -> the same, resampled bilinearly through ``theta`` (zeros outside)."""
    grid = F.affine_grid(theta[None].to(tensor.dtype), [1, *tensor.shape], align_corners=False)
    return F.grid_sample(tensor[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def _jitter(image: torch.Tensor, order: tuple[int, ...], factors: tuple[float, float, float]) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    adjust = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)
    for i in order:
        image = adjust[i](image, factors[i])
    return image


def augment_and_resize(image: np.ndarray, masks: np.ndarray, size: int,
                       params: AugmentParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``params`` to an image and its masks and squash both to ``size`` x ``size``.

    image: (H, W, 3) uint8 RGB; masks: (K, H, W) bool. Returns image (3, size, size) float32 in
    [0, 1] (not yet normalised) and masks (K, size, size) bool (resampled as fractions, kept
    where > 0.5).
    """
    from torchvision.transforms.functional import resize  # what inference uses
    from torchvision.transforms.v2 import functional as TF

    height, width = image.shape[:2]
    img = torch.tensor(image).permute(2, 0, 1).float().div(255.0)
    img = resize(img, [size, size], antialias=True)
    if masks.shape[0]:
        m = resize(torch.from_numpy(np.ascontiguousarray(masks)).float(), [size, size], antialias=True)
    else:
        m = torch.zeros((0, size, size))
    if not params.is_identity_geometry:
        warped = _warp(m, affine_theta(params, height, width)) if m.shape[0] else m
        lost = ((warped > 0.5).flatten(1).any(1) < (m > 0.5).flatten(1).any(1)).any()
        if lost:  # a mask left the image: skip the affine, keep the flip (the reference's rule)
            params = AugmentParams(flip=params.flip, jitter=params.jitter, grayscale=params.grayscale)
            warped = _warp(m, affine_theta(params, height, width)) if m.shape[0] and params.flip else m
        m = warped
        if not params.is_identity_geometry:
            fill = torch.tensor(FILL)[:, None, None]
            img = _warp(img - fill, affine_theta(params, height, width)) + fill
    img = img.clamp(0.0, 1.0)
    for k, (order, factors) in enumerate(params.jitter):
        img = _jitter(img, order, factors)
        if k == 0 and params.grayscale:
            img = TF.rgb_to_grayscale(img, num_output_channels=3)
    if not params.jitter and params.grayscale:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    return img.contiguous(), (m > 0.5).contiguous()
