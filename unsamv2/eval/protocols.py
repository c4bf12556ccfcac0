"""What the evaluation needs from a model: three small protocols, no import of the model code.

Any object with these methods can be evaluated (the UnSAMv2 predictor of ``unsamv2.model``, a
SAM-2 adapter, a test double). Shapes, dtypes and coordinate order:

- ``image``: (H, W, 3) uint8 RGB.
- ``point_coords``: (N, 2) float32 in pixels of the original image, **(x, y)** order;
  ``point_labels``: (N,) int32, 1 = positive (foreground), 0 = negative (background). All clicks
  so far are passed on every call, oldest first.
- ``mask_input``: None on the first click; afterwards, when mask feedback is on, the previous
  click's low-resolution logits of the mask that was kept, shape (1, S, S) float32 (the SAM /
  SAM-2 ``mask_input`` convention; S = model input size / 4 = 256 for the 1024-px models).
- Returned ``masks``: (G, H, W) bool at the original image size (already binarised by the
  model's own threshold); ``iou``: (G,) float predicted IoU; ``low_res``: (G, S, S) float32
  logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(masks (G, H, W) bool, iou (G,) float, low_res (G, S, S) float32)``, S = 256 for 1024-px models."""


@runtime_checkable
class GranularityPredictor(Protocol):
    """An interactive predictor with a granularity input (UnSAMv2)."""

    def set_image(self, image: np.ndarray) -> None:
        """Embed ``image`` (H, W, 3) uint8 RGB once; later ``predict`` calls reuse the embedding."""

    def predict(
        self,
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        granularity: float | Sequence[float],
        mask_input: np.ndarray | None = None,
    ) -> Prediction:
        """One mask per granularity value (G = 1 for a float, G = len(granularity) otherwise)."""


@runtime_checkable
class MultimaskPredictor(Protocol):
    """An interactive predictor without granularity: the SAM-2 baselines.

    ``predict_single`` is SAM-2 with ``multimask_output=False`` (G = 1); ``predict_multimask`` is
    SAM-2 with ``multimask_output=True`` (G = 3 candidate masks).
    """

    def set_image(self, image: np.ndarray) -> None:
        """Embed ``image`` (H, W, 3) uint8 RGB once."""

    def predict_single(
        self, point_coords: np.ndarray, point_labels: np.ndarray, mask_input: np.ndarray | None = None
    ) -> Prediction:
        """SAM-2's single-mask output: masks (1, H, W), iou (1,), low_res (1, S, S)."""

    def predict_multimask(
        self, point_coords: np.ndarray, point_labels: np.ndarray, mask_input: np.ndarray | None = None
    ) -> Prediction:
        """SAM-2's three candidate masks: masks (3, H, W), iou (3,), low_res (3, S, S)."""


@runtime_checkable
class MaskGenerator(Protocol):
    """Whole-image segmentation at given granularities (docs/architecture.md#inference).

    ``generate(image, granularity=[g1, g2, ...])`` embeds ``image`` (H, W, 3) uint8 once and
    returns one flat list of mask records for all requested g. Each record is a dict with at least

    - ``"segmentation"``: the mask as a COCO RLE dict ``{"size": [H, W], "counts": str | bytes}``
      or as compressed RLE ``counts`` bytes (size = the image's);
    - ``"predicted_iou"``: float, the model's IoU prediction (the detection score for AR);
    - ``"granularity"``: float, the g the mask was generated at.

    Other keys (``stability_score``, ``point_coords``, ``bbox``, ...) are allowed and ignored.
    """

    def generate(self, image: np.ndarray, granularity: Sequence[float]) -> list[dict[str, Any]]:
        """Masks for every g in ``granularity`` (see the class docstring)."""
