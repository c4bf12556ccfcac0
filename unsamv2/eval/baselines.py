"""SAM-2 as the evaluation's baseline: an adapter from ``sam2``'s image predictor to
:class:`~unsamv2.eval.protocols.MultimaskPredictor` (policies ``sam2-single`` and ``sam2-best3``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unsamv2.eval.protocols import Prediction


class Sam2Baseline:
    """Wraps a ``sam2.sam2_image_predictor.SAM2ImagePredictor`` (official SAM-2 / SAM-2.1 weights).

    Masks are the logits thresholded as the official evaluation scripts do: above
    ``single_threshold`` (-1.0) for the single-mask output, above ``multimask_threshold`` (0.0,
    SAM-2's own default) for the three candidates of best-of-3. Points are (x, y) pixels of the
    original image; ``mask_input`` is (1, S, S) low-res logits.
    """

    def __init__(self, sam2_predictor: Any, single_threshold: float = -1.0,
                 multimask_threshold: float = 0.0) -> None:
        self.predictor = sam2_predictor
        self.single_threshold = float(single_threshold)
        self.multimask_threshold = float(multimask_threshold)

    @classmethod
    def from_model(cls, sam2_model: Any, single_threshold: float = -1.0,
                   multimask_threshold: float = 0.0) -> Sam2Baseline:
        """Wrap a ``SAM2Base`` model (e.g. ``unsamv2.model.build_sam2(...)``) of any input size.

        ``SAM2ImagePredictor`` assumes 1024-px inputs for its backbone feature sizes; they are set
        here from ``sam2_model.image_size`` (strides 4, 8, 16), so small test configs work too.
        """
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        predictor = SAM2ImagePredictor(sam2_model)
        size = int(sam2_model.image_size)
        predictor._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]
        return cls(predictor, single_threshold, multimask_threshold)

    def set_image(self, image: np.ndarray) -> None:
        """Embed ``image`` (H, W, 3) uint8 RGB."""
        self.predictor.set_image(image)

    def _predict(self, point_coords: np.ndarray, point_labels: np.ndarray, mask_input: np.ndarray | None,
                 multimask: bool) -> Prediction:
        logits, iou, low = self.predictor.predict(
            point_coords=np.asarray(point_coords, dtype=np.float32),
            point_labels=np.asarray(point_labels, dtype=np.int32),
            mask_input=None if mask_input is None else np.asarray(mask_input, dtype=np.float32),
            multimask_output=multimask, return_logits=True)
        threshold = self.multimask_threshold if multimask else self.single_threshold
        return logits > threshold, np.asarray(iou), np.asarray(low, dtype=np.float32)

    def predict_single(self, point_coords: np.ndarray, point_labels: np.ndarray,
                       mask_input: np.ndarray | None = None) -> Prediction:
        """SAM-2 with ``multimask_output=False``: masks (1, H, W) bool, iou (1,), low_res (1, S, S)."""
        return self._predict(point_coords, point_labels, mask_input, multimask=False)

    def predict_multimask(self, point_coords: np.ndarray, point_labels: np.ndarray,
                          mask_input: np.ndarray | None = None) -> Prediction:
        """SAM-2 with ``multimask_output=True``: masks (3, H, W) bool, iou (3,), low_res (3, S, S)."""
        return self._predict(point_coords, point_labels, mask_input, multimask=True)


class Sam2AutomaticMasks:
    """SAM-2's own automatic mask generator (``sam2.automatic_mask_generator``) as a
    :class:`~unsamv2.eval.protocols.MaskGenerator`: the whole-image baseline of AR.

    SAM-2 has no dial, so it runs once per image whatever g are asked for; its records are
    returned once, tagged with the last requested g (AR pools over g). ``options`` are
    ``SAM2AutomaticMaskGenerator`` keyword arguments (``points_per_side``, ``pred_iou_thresh``,
    ``stability_score_thresh``, ``use_m2m`` ...); :meth:`settings` reports them for the
    evaluation's protocol.
    """

    def __init__(self, sam2_model: Any, **options: Any) -> None:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

        self.generator = SAM2AutomaticMaskGenerator(sam2_model, output_mode="coco_rle", **options)
        size = int(sam2_model.image_size)
        self.generator.predictor._bb_feat_sizes = [(size // s, size // s) for s in (4, 8, 16)]

    def generate(self, image: np.ndarray, granularity: Any = (1.0,)) -> list[dict[str, Any]]:
        """Mask records of ``image`` (H, W, 3) uint8: COCO RLE ``segmentation``, ``predicted_iou``,
        ``granularity`` (the last of ``granularity``)."""
        g = float(list(granularity)[-1])
        return [{"segmentation": r["segmentation"], "predicted_iou": float(r["predicted_iou"]),
                 "granularity": g} for r in self.generator.generate(image)]

    def settings(self) -> dict[str, Any]:
        """The options that change AR, as :class:`~unsamv2.eval.whole_image.WholeImageSettings`
        fields (``multimask_iou`` is SAM-2's ``multimask_output``: three masks per point)."""
        gen = self.generator
        return {"generator": "sam2-automatic", "points_per_side": int(round(len(gen.point_grids[0]) ** 0.5)),
                "points_per_batch": gen.points_per_batch, "use_m2m": bool(gen.use_m2m),
                "pred_iou_thresh": float(gen.pred_iou_thresh),
                "stability_score_thresh": float(gen.stability_score_thresh),
                "stability_score_offset": float(gen.stability_score_offset),
                "box_nms_thresh": float(gen.box_nms_thresh), "mask_threshold": float(gen.mask_threshold),
                "min_mask_region_area": int(gen.min_mask_region_area), "crop_n_layers": int(gen.crop_n_layers),
                "multimask_iou": bool(gen.multimask_output)}
