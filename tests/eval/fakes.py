"""Predictors with real, deterministic behaviour for the policy and evaluation tests.

``HierarchyPredictor`` answers from a known part hierarchy (what a perfect UnSAMv2 would do):
the node that agrees best with the clicks, at the granularity closest to the requested g.
``ScriptedPredictor`` returns masks whose IoU with one ground truth follows a given table, to pin
selection rules exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Node:
    node_id: int
    parent_id: int | None
    granularity: float
    mask: np.ndarray  # (H, W) bool


def rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def two_object_hierarchy(h: int = 48, w: int = 64) -> tuple[np.ndarray, list[Node]]:
    """Two objects (g=1.0), each split into left/right parts (g=0.6), each part into top/bottom
    sub-parts (g=0.2). Returns an image (H, W, 3) uint8 and the nodes."""
    nodes: list[Node] = []
    for y0, x0 in [(4, 4), (8, 36)]:
        oid = len(nodes)
        nodes.append(Node(oid, None, 1.0, rect(h, w, y0, y0 + 32, x0, x0 + 24)))
        for side in range(2):
            pid = len(nodes)
            px0 = x0 + 12 * side
            nodes.append(Node(pid, oid, 0.6, rect(h, w, y0, y0 + 32, px0, px0 + 12)))
            for half in range(2):
                nodes.append(Node(len(nodes), pid, 0.2, rect(h, w, y0 + 16 * half, y0 + 16 * half + 16, px0, px0 + 12)))
    image = np.zeros((h, w, 3), np.uint8)
    for node in nodes:
        image[node.mask] = (40 * node.node_id) % 255
    return image, nodes


def _low_res(mask: np.ndarray) -> np.ndarray:
    ys = np.linspace(0, mask.shape[0] - 1, 256).round().astype(int)
    xs = np.linspace(0, mask.shape[1] - 1, 256).round().astype(int)
    return np.where(mask[np.ix_(ys, xs)], 8.0, -8.0).astype(np.float32)


class HierarchyPredictor:
    """Implements GranularityPredictor, MultimaskPredictor and MaskGenerator from a hierarchy."""

    def __init__(self, nodes: list[Node]):
        self.nodes = nodes
        self.embedded: list[np.ndarray] = []
        self.calls = 0

    def set_image(self, image: np.ndarray) -> None:
        self.embedded.append(image)

    def _pick(self, points: np.ndarray, labels: np.ndarray, g: float) -> np.ndarray:
        xy = points.astype(int)
        best, best_key = None, None
        for node in self.nodes:
            inside = node.mask[xy[:, 1], xy[:, 0]]
            score = int(np.sum(inside & (labels == 1))) - int(np.sum(inside & (labels == 0)))
            if not np.any(inside & (labels == 1)):
                continue
            key = (-score, round(abs(node.granularity - g), 6), int(node.mask.sum()))
            if best_key is None or key < best_key:
                best, best_key = node, key
        return np.zeros_like(self.nodes[0].mask) if best is None else best.mask

    def predict(self, point_coords, point_labels, granularity, mask_input=None):
        self.calls += 1
        gs = [granularity] if np.isscalar(granularity) else list(granularity)
        masks = np.stack([self._pick(point_coords, point_labels, float(g)) for g in gs])
        return masks, np.full(len(gs), 0.9, np.float32), np.stack([_low_res(m) for m in masks])

    def predict_single(self, point_coords, point_labels, mask_input=None):
        return self.predict(point_coords, point_labels, 1.0, mask_input)

    def predict_multimask(self, point_coords, point_labels, mask_input=None):
        return self.predict(point_coords, point_labels, [0.2, 0.6, 1.0], mask_input)

    def generate(self, image, granularity):
        from unsamv2.data.rle import encode_rle

        out = []
        for g in granularity:
            for node in self.nodes:
                if abs(node.granularity - g) < 0.21:
                    out.append({"segmentation": encode_rle(node.mask), "predicted_iou": 1.0 - abs(node.granularity - g),
                                "granularity": float(g)})
        return out


class ScriptedPredictor:
    """Masks with a scripted IoU against ``gt`` (a 10x10 block): curves[g][click - 1].

    The low-res logits of (g, click) are filled with ``1000 * g + click`` so tests can check which
    logits were fed back as ``mask_input``.
    """

    def __init__(self, curves: dict[float, list[float]], multimask: list[list[float]] | None = None):
        self.gt = rect(12, 12, 1, 11, 1, 11)
        self.curves = curves
        self.multimask = multimask
        self.mask_inputs: list[tuple[float, int, float | None]] = []
        self.calls = 0

    def _mask(self, iou: float) -> np.ndarray:
        flat = np.zeros(144, bool)
        idx = np.flatnonzero(self.gt.ravel())[: int(round(100 * iou))]
        flat[idx] = True
        return flat.reshape(12, 12)

    def set_image(self, image):
        pass

    def predict(self, point_coords, point_labels, granularity, mask_input=None):
        self.calls += 1
        click = len(point_coords)
        gs = [granularity] if np.isscalar(granularity) else list(granularity)
        self.mask_inputs.append((float(gs[0]), click, None if mask_input is None else float(mask_input.flat[0])))
        masks = np.stack([self._mask(self.curves[round(float(g), 1)][click - 1]) for g in gs])
        low = np.stack([np.full((256, 256), 1000 * float(g) + click, np.float32) for g in gs])
        return masks, np.full(len(gs), 0.5, np.float32), low

    def predict_multimask(self, point_coords, point_labels, mask_input=None):
        click = len(point_coords)
        self.mask_inputs.append((-1.0, click, None if mask_input is None else float(mask_input.flat[0])))
        ious = self.multimask[click - 1]
        low = np.stack([np.full((256, 256), 10 * k + click, np.float32) for k in range(3)])
        return np.stack([self._mask(v) for v in ious]), np.full(3, 0.5, np.float32), low

    def predict_single(self, point_coords, point_labels, mask_input=None):
        m, i, low = self.predict_multimask(point_coords, point_labels, mask_input)
        return m[:1], i[:1], low[:1]



class SceneTruthPredictor(HierarchyPredictor):
    """A perfect UnSAMv2 on procedural scenes: looks the embedded image's hierarchy up by content.

    ``erode`` > 0 shrinks every returned mask by that many pixels (a deliberately worse model).
    """

    def __init__(self, scenes, erode: int = 0):
        super().__init__([])
        self.by_image = {scene.image.tobytes(): scene.nodes for scene in scenes}
        self.erode = erode

    def set_image(self, image):
        super().set_image(image)
        self.nodes = self.by_image[np.ascontiguousarray(image).tobytes()]

    def _pick(self, points, labels, g):
        mask = super()._pick(points, labels, g)
        if self.erode:
            from scipy.ndimage import binary_erosion

            mask = binary_erosion(mask, iterations=self.erode)
        return mask

    def generate(self, image, granularity):
        self.nodes = self.by_image[np.ascontiguousarray(image).tobytes()]
        return super().generate(image, granularity)
