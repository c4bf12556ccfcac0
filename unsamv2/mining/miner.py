"""The miner: granularity-aware divide and conquer on one image (docs/architecture.md#mining).

    miner = Miner(MinerConfig())          # loads the backbone once
    masks = miner.mine(image)             # image (H, W, 3) uint8 RGB -> list[MinedMask]
    rows = to_mask_records(masks)         # elements of the mask table's ``masks`` column

Per image: divide (MaskCut on the image's patch grid and on overlapping crops, upsampled to the
image; :mod:`unsamv2.mining.divide`) -> instance-part relation -> per instance: conquer (merge
levels inside the instance box, coverage filter), NMS of the conquer masks, protected NMS of
conquer masks + divide parts against the instance, optional refinement, granularity within the
group; then, with ``scene_group``, the same for the whole image as one more group. Deterministic for a config; no state is kept between
images, so one Miner can serve many images (and be rebuilt from its config in any worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from unsamv2.errors import InputError
from unsamv2.mining.config import MinedMask, MinerConfig
from unsamv2.mining.conquer import ConquerLevels, conquer_instance, instance_box
from unsamv2.mining.divide import DivideResult, divide_image
from unsamv2.mining.features import FeatureBackbone, check_rgb
from unsamv2.mining.granularity import granularity_scores
from unsamv2.mining.masks import (
    LabelLayers,
    area_order,
    bbox_of,
    instance_part_relation,
    nms_from_iou,
)

if TYPE_CHECKING:
    from unsamv2.mining.refine import GuideStats


def build_backbone(config: MinerConfig) -> FeatureBackbone:
    """The feature backbone named by ``config`` (DINO weights are loaded here, once)."""
    if config.backbone == "descriptor":
        from unsamv2.mining.features import PatchDescriptor

        return PatchDescriptor(patch_size=config.effective_patch_size)
    from unsamv2.mining.dino import load_dino_backbone

    return load_dino_backbone(
        config.backbone,
        config.backbone_weights or "",
        arch=config.backbone_arch,
        device=config.device,
        patch_size=config.patch_size,
        normalization=config.backbone_normalization,
    )


class Miner:
    """Mine (mask, granularity) pseudo-labels from single images; see the module docstring."""

    def __init__(self, config: MinerConfig | None = None, backbone: FeatureBackbone | None = None):
        self.config = config or MinerConfig()
        self.backbone = backbone if backbone is not None else build_backbone(self.config)
        self.candidate_index = None
        if self.config.candidates:
            from unsamv2.mining.candidates import load_candidates

            self.candidate_index = load_candidates(self.config.candidates, self.config.candidate_min_score)

    def divide(self, image: np.ndarray) -> np.ndarray:
        """MaskCut candidates (K, H, W) bool of ``image`` (H, W, 3) uint8, in discovery order
        (the whole image's, then the crops' of the multi-scale divide)."""
        return self.divide_views(image).masks

    def divide_views(self, image: np.ndarray) -> DivideResult:
        """MaskCut candidates of ``image`` (H, W, 3) uint8 with the area of the view that found each."""
        return divide_image(check_rgb(image), self.backbone, self.config)

    def mine(self, image: np.ndarray, image_uri: str | None = None) -> list[MinedMask]:
        """All mined masks of ``image`` (H, W, 3) uint8 RGB, grouped by instance (instance first).

        With ``config.candidates`` the divide masks are the candidate file's masks of ``image_uri``
        (required then) with score > ``candidate_min_score``; else MaskCut's. With
        ``config.scene_group`` the last group is the whole image's (its regions only).
        """
        image = check_rgb(image)
        if self.candidate_index is not None:
            if image_uri is None:
                raise InputError("this miner divides from a candidate file: pass the image's URI to mine().")
            candidates, _ = self.candidate_index.masks_for(image_uri, image.shape[0], image.shape[1])
            views = None
        else:
            divided = self.divide_views(image)
            candidates, views = divided.masks, divided.view_areas
        relation = instance_part_relation(
            candidates, self.config.instance_min_area, self.config.containment, views
        )
        stats = None
        if self.config.refine:  # the guide's statistics, once per image for all its masks
            from unsamv2.mining.refine import guide_stats

            stats = guide_stats(image)
        out: list[MinedMask] = []
        for group_id, (inst, parts) in enumerate(relation.items()):
            out.extend(self._mine_instance(image, candidates[inst], candidates[parts], group_id, stats=stats))
        if self.config.scene_group:
            out.extend(self._mine_scene(image, len(relation), stats))
        return out

    def _mine_scene(self, image: np.ndarray, group_id: int, stats: GuideStats | None = None) -> list[MinedMask]:
        """The scene group: the whole image conquered as one instance; its regions, without the image.

        A fallback for what the divide missed, so its regions rank after every mask of the instance
        groups: their stability score is scaled by 1 / L (L merge levels), at most the lowest
        score an instance group's region can have (stability 1 / L).
        """
        whole = np.ones(image.shape[:2], dtype=bool)
        no_parts = np.zeros((0, *image.shape[:2]), dtype=bool)
        regions = [m for m in self._mine_instance(image, whole, no_parts, group_id, refine_instance=False, stats=stats)
                   if m.origin != "divide"]
        for m in regions:
            m.score /= len(self.config.thresholds)
        return regions

    def _mine_instance(
        self, image: np.ndarray, instance: np.ndarray, divide_parts: np.ndarray, group_id: int,
        refine_instance: bool = True, stats: GuideStats | None = None,
    ) -> list[MinedMask]:
        """Conquer one instance; NMS, protected NMS, refinement (with the image's guide ``stats``)
        and granularity of its group."""
        cfg = self.config
        if cfg.refine and refine_instance:
            from unsamv2.mining.refine import refine_mask

            instance = refine_mask(image, instance, stats=stats)
        levels = conquer_instance(
            image, instance, self.backbone, long_side=cfg.conquer_long_side,
            thresholds=cfg.thresholds, min_size=cfg.min_region_patches, coverage=cfg.coverage,
        )
        frame, box, level_of, inst_id, part_ids = _group_frame(levels, instance, divide_parts)
        iou, areas = frame.ious()
        conquer_ids = np.array(sorted(level_of), dtype=np.int64)
        kept = nms_from_iou(iou, conquer_ids[area_order(areas[conquer_ids])], cfg.nms_iou)
        normal = np.array(kept + part_ids, dtype=np.int64)
        order = normal[area_order(areas[normal])] if normal.size else normal
        order = np.array([i for i in order if iou[i, inst_id] <= cfg.protected_nms_iou], dtype=np.int64)
        members = [inst_id, *nms_from_iou(iou, order, cfg.nms_iou)]
        y0, x0, y1, x1 = box
        masks, refined_members = [], []
        for i in members:
            full: np.ndarray = np.zeros(image.shape[:2], dtype=bool)
            full[y0:y1, x0:x1] = frame.mask(i)
            if cfg.refine and i != inst_id:
                from unsamv2.mining.refine import refine_or_drop

                refined = refine_or_drop(image, full, stats=stats)  # a failed part refinement drops the part, as the release
                if refined is None:
                    continue
                full = refined
            masks.append(full)
            refined_members.append(i)
        members = refined_members
        scores = []
        for i in members:
            if i in level_of:  # stability: share of merge levels holding (almost) this region
                same = {level_of[j] for j in conquer_ids.tolist() if iou[i, j] > cfg.nms_iou}
                scores.append(len(same | {level_of[i]}) / max(1, len(levels.labels)))
            else:
                scores.append(1.0)
        origins = ["divide" if i == inst_id else "conquer" if i in level_of else "part" for i in members]
        return _group_masks(masks, origins, scores, group_id)


def _group_frame(
    levels: ConquerLevels, instance: np.ndarray, divide_parts: np.ndarray
) -> tuple[LabelLayers, tuple[int, int, int, int], dict[int, int], int, list[int]]:
    """Label layers of one instance group in a frame that holds the instance box and every part.

    Returns (layers, frame box (y0, x0, y1, x1), {conquer mask id: level}, instance id, part ids).
    """
    y0, x0, y1, x1 = levels.box
    for p in divide_parts:
        py0, px0, py1, px1 = instance_box(p)
        y0, x0, y1, x1 = min(y0, py0), min(x0, px0), max(y1, py1), max(x1, px1)
    frame = LabelLayers(y1 - y0, x1 - x0)
    level_of: dict[int, int] = {}
    cy0, cx0, cy1, cx1 = levels.box
    for li, labels in enumerate(levels.labels):
        padded = np.full((y1 - y0, x1 - x0), -1, dtype=np.int32)
        padded[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = labels
        level_of.update({i: li for i in frame.add_layer(padded)})
    inst_id = frame.add_mask(instance[y0:y1, x0:x1])
    part_ids = [frame.add_mask(p[y0:y1, x0:x1]) for p in divide_parts]
    return frame, (y0, x0, y1, x1), level_of, inst_id, part_ids


def _group_masks(
    masks: list[np.ndarray], origins: list[str], scores: list[float], group_id: int
) -> list[MinedMask]:
    """MinedMasks of one group (instance first), empty masks dropped, granularity from the areas."""
    areas = np.array([int(m.sum()) for m in masks], dtype=np.int64)
    keep = [k for k in range(len(masks)) if areas[k] > 0]
    g = granularity_scores(areas[keep])
    return [
        MinedMask(mask=masks[k], bbox=bbox_of(masks[k]), area=int(areas[k]), granularity=float(gk),
                  instance_id=group_id, is_part=origins[k] != "divide", origin=origins[k],
                  score=float(scores[k]))
        for k, gk in zip(keep, g, strict=True)
    ]


def to_mask_records(masks: list[MinedMask]) -> list[dict[str, Any]]:
    """Mask-table elements (``unsamv2.data.schema.mask_record``) of mined masks, RLE-encoded."""
    from unsamv2.data.rle import encode_rles
    from unsamv2.data.schema import mask_record

    if not masks:
        return []
    shapes = {m.mask.shape for m in masks}
    if len(shapes) != 1:
        raise InputError(f"all masks of one image must have the same size, got {sorted(shapes)}.")
    rles = encode_rles(np.stack([m.mask for m in masks]))
    return [
        mask_record(
            rle, m.bbox, m.area, granularity=m.granularity, instance_id=m.instance_id,
            is_part=m.is_part, origin=m.origin, score=m.score,
        )
        for rle, m in zip(rles, masks, strict=True)
    ]
