"""Interactive prediction: embed an image once, then decode clicks at any granularity.

    predictor = UnSAMv2Predictor(model)
    predictor.set_image(image)                               # (H, W, 3) uint8 RGB
    masks, iou, low_res = predictor.predict([[x, y]], [1], granularity=[0.2, 0.5, 1.0])
    # masks (3, H, W) bool, iou (3,) float32, low_res (3, S/4, S/4) float32 logits

All granularities go through the decoder in one batch. ``predict_batch`` decodes many
independent prompt sets (objects x granularities) in one call — what an evaluation loop wants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from unsamv2.errors import InputError

if TYPE_CHECKING:
    from unsamv2.model.network import ImageFeatures, UnSAMv2Model

ArrayLike = Any


def as_granularities(granularity: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """A float or a sequence of floats in [0, 1] -> (G,) float64; InputError otherwise."""
    try:
        values = np.asarray(granularity, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"granularity must be a number or a list of numbers in [0, 1], got "
                         f"{granularity!r}.") from exc
    if values.size == 0:
        raise InputError("give at least one granularity value in [0, 1].")
    bad = values[~np.isfinite(values) | (values < 0) | (values > 1)]
    if bad.size:
        raise InputError(f"granularity {bad[0]:g} is outside [0, 1]; use values like 0.1 (a part) "
                         "... 1.0 (the whole object).")
    return values


IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def preprocess_image(image: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, size, size) float: /255, bilinear antialiased resize,
    ImageNet normalisation (SAM-2's image-predictor transform)."""
    from torchvision.transforms.functional import resize

    tensor = torch.tensor(image).permute(2, 0, 1).float().div(255.0)
    tensor = resize(tensor, [size, size], antialias=True)
    mean = torch.tensor(IMAGE_MEAN)[:, None, None]
    std = torch.tensor(IMAGE_STD)[:, None, None]
    return ((tensor - mean) / std)[None]


def upscale_logits(low_res: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, 1, h, w) logits -> (B, 1, H, W), bilinear (SAM-2's post-processing, no hole filling)."""
    import torch.nn.functional as F

    return F.interpolate(low_res.float(), hw, mode="bilinear", align_corners=False)


class UnSAMv2Predictor:
    """Stateful facade: ``set_image`` once, then ``predict`` / ``predict_batch`` many times.

    mask_threshold: logits above it are foreground (the reference evaluates at -1.0).
    multimask_iou: report the predicted IoU as the max over SAM-2's three multimask IoU slots
    (the reference predictor's ``multimask_output=True`` behaviour) instead of the single-mask
    slot (the default, docs/architecture.md#model).
    """

    def __init__(self, model: UnSAMv2Model, mask_threshold: float = -1.0,
                 multimask_iou: bool = False) -> None:
        self.model = model
        self.mask_threshold = float(mask_threshold)
        self.multimask_iou = bool(multimask_iou)
        self._features: ImageFeatures | None = None
        self._orig_hw: tuple[int, int] | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def image_size_hw(self) -> tuple[int, int]:
        """(H, W) of the current image; InputError before :meth:`set_image`."""
        if self._orig_hw is None:
            raise InputError("no image is set; call set_image(image) before predict().")
        return self._orig_hw

    @property
    def features(self) -> ImageFeatures:
        """The current image's features (for callers that use ``model.decode`` directly)."""
        if self._features is None:
            raise InputError("no image is set; call set_image(image) before predict().")
        return self._features

    def reset_image(self) -> None:
        self._features, self._orig_hw = None, None

    @torch.inference_mode()
    def set_image(self, image: np.ndarray) -> None:
        """Embed ``image``: (H, W, 3) uint8 RGB. Later predictions reuse the embedding."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise InputError(f"image must be a numpy uint8 array, got "
                             f"{type(image).__name__} {getattr(image, 'dtype', '')}; convert it "
                             "with np.asarray(PIL.Image.open(p).convert('RGB')).")
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise InputError(f"image must be (H, W, 3) RGB, got shape {image.shape}.")
        batch = preprocess_image(image, self.model.image_size).to(self.device)
        self._features = self.model.encode_image(batch)
        self._orig_hw = (int(image.shape[0]), int(image.shape[1]))

    def predict(self, point_coords: ArrayLike, point_labels: ArrayLike,
                granularity: float | Sequence[float], mask_input: ArrayLike | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for one click set at G granularities, decoded in one batch.

        point_coords: (N, 2) float, (x, y) pixels of the image; point_labels: (N,) int, 1 =
        positive, 0 = negative; granularity: a float or G floats in [0, 1]; mask_input: low-res
        logits from a previous call, (S/4, S/4) or (1, S/4, S/4) (shared by all g) or
        (G, S/4, S/4) (one per g).
        Returns masks (G, H, W) bool, predicted IoU (G,) float32, low-res logits
        (G, S/4, S/4) float32 (clamped to [-32, 32], ready to feed back).
        """
        coords, labels = self._check_points(point_coords, point_labels)
        g = as_granularities(granularity)
        count = g.shape[0]
        masks = None if mask_input is None else self._check_mask_input(mask_input, count)
        out, iou, low_res = self.predict_batch(np.broadcast_to(coords, (count, *coords.shape)),
                                               np.broadcast_to(labels, (count, *labels.shape)), g, masks)
        assert out is not None  # return_masks=True always decodes the full-size masks
        return out, iou, low_res

    @torch.inference_mode()
    def predict_batch(self, point_coords: ArrayLike, point_labels: ArrayLike, granularity: ArrayLike,
                      mask_input: ArrayLike | None = None, return_masks: bool = True,
                      multimask_iou: bool | None = None,
                      ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """B independent prompt sets on the current image in one decoder call.

        point_coords (B, N, 2) float (x, y) image pixels; point_labels (B, N) int (1, 0, or -1
        for padding when click counts differ — SAM's "not a point" token, which still takes part
        in attention, so a padded row is close to but not bit-equal to the unpadded prompt);
        granularity (B,) in [0, 1]; mask_input
        (B, S/4, S/4) or (B, 1, S/4, S/4) logits or None; multimask_iou: this call's IoU
        reading (None: the predictor's ``multimask_iou``). Returns masks (B, H, W) bool (None
        if ``return_masks`` is False), IoU (B,), low-res logits (B, S/4, S/4).
        """
        height, width = self.image_size_hw
        coords, labels, g, masks_in = self._check_batch(point_coords, point_labels, granularity,
                                                        mask_input)
        dev = self.device
        # (x / W, y / H) * S, in float32, as SAM-2's transforms do
        size = torch.tensor([width, height], dtype=torch.float32, device=dev)
        coords_t = torch.tensor(coords, device=dev) / size * self.model.image_size
        labels_t = torch.tensor(labels.astype(np.int32), device=dev)
        mask_t = None if masks_in is None else torch.tensor(masks_in, device=dev)
        multimask = self.multimask_iou if multimask_iou is None else bool(multimask_iou)
        out = self.model.decode(self.features, coords_t, labels_t,
                                torch.tensor(g, dtype=torch.float32, device=dev),
                                mask_t, multimask_iou=multimask)
        low_res = out.low_res_logits
        masks = None
        if return_masks:
            logits = upscale_logits(low_res, (height, width))
            masks = (logits[:, 0] > self.mask_threshold).cpu().numpy()
        low_res = torch.clamp(low_res, -32.0, 32.0)[:, 0]
        return masks, out.iou_pred[:, 0].float().cpu().numpy(), low_res.float().cpu().numpy()

    def _check_batch(self, point_coords: ArrayLike, point_labels: ArrayLike, granularity: ArrayLike,
                     mask_input: ArrayLike | None,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Validated (coords (B, N, 2), labels (B, N), g (B,), masks (B, 1, s, s) | None)."""
        height, width = self.image_size_hw
        coords = np.asarray(point_coords, dtype=np.float32)
        labels = np.asarray(point_labels)
        if coords.ndim != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
            raise InputError(f"point_coords must be (B, N, 2) and point_labels (B, N), got "
                             f"{coords.shape} and {labels.shape}.")
        if labels.dtype.kind not in "iu" or not np.isin(labels, (-1, 0, 1)).all():
            raise InputError("point_labels must be 1 (positive), 0 (negative) or -1 (padding).")
        real = labels != -1
        inside = np.isfinite(coords).all(-1) & (coords[..., 0] >= 0) & (coords[..., 0] < width) \
            & (coords[..., 1] >= 0) & (coords[..., 1] < height)
        if (real & ~inside).any():
            raise InputError(f"a click is outside the {width}x{height} image; use 0 <= x < {width} "
                             f"and 0 <= y < {height} (label -1 padding points are exempt).")
        g = as_granularities(granularity)
        if g.shape[0] != coords.shape[0]:
            raise InputError(f"{g.shape[0]} granularities for {coords.shape[0]} prompt sets; give one each.")
        if mask_input is None:
            return coords, labels.astype(np.int32), g, None
        side = self.model.low_res_size
        masks = np.asarray(mask_input, dtype=np.float32)
        if masks.size != coords.shape[0] * side * side:
            raise InputError(f"mask_input must be ({coords.shape[0]}, {side}, {side}) low-res "
                             f"logits, got shape {masks.shape}.")
        return coords, labels.astype(np.int32), g, masks.reshape(-1, 1, side, side)

    def _check_points(self, point_coords: ArrayLike, point_labels: ArrayLike,
                      ) -> tuple[np.ndarray, np.ndarray]:
        height, width = self.image_size_hw
        try:
            coords = np.asarray(point_coords, dtype=np.float32)
            labels = np.asarray(point_labels)
        except (TypeError, ValueError) as exc:
            raise InputError("point_coords must be numbers of shape (N, 2) and point_labels (N,).") from exc
        if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] == 0:
            raise InputError(f"point_coords must be (N, 2) with N >= 1 (x, y) pixels, got shape {coords.shape}.")
        if labels.shape != (coords.shape[0],):
            raise InputError(f"point_labels must be ({coords.shape[0]},), one per point, got shape {labels.shape}.")
        if labels.dtype.kind not in "iub" or not np.isin(labels, (0, 1)).all():
            raise InputError(f"point_labels must be integers 1 (positive) or 0 (negative), got {labels.tolist()}.")
        outside = ~np.isfinite(coords).all(1) | (coords[:, 0] < 0) | (coords[:, 0] >= width) \
            | (coords[:, 1] < 0) | (coords[:, 1] >= height)
        if outside.any():
            x, y = coords[np.argmax(outside)]
            raise InputError(f"point (x, y) = ({x:g}, {y:g}) is outside the {width}x{height} image; "
                             f"use 0 <= x < {width} and 0 <= y < {height}.")
        return coords, labels.astype(np.int32)

    def _check_mask_input(self, mask_input: ArrayLike, count: int) -> np.ndarray:
        side = self.model.low_res_size
        masks = np.asarray(mask_input, dtype=np.float32)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.ndim == 4 and masks.shape[1] == 1:
            masks = masks[:, 0]
        if masks.ndim != 3 or masks.shape[1:] != (side, side) or masks.shape[0] not in (1, count):
            raise InputError(f"mask_input must be low-res logits of shape ({side}, {side}), "
                             f"(1, {side}, {side}) or ({count}, {side}, {side}), got {np.shape(mask_input)}.")
        return np.broadcast_to(masks, (count, side, side))
