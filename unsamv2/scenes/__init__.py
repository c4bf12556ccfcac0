"""Procedural hierarchical scenes (the project's own ground truth) and bundled sample photos.

Objects made of parts made of sub-parts, textured and lit, with the exact visible mask, parent and
ground-truth granularity of every node::

    from unsamv2.scenes import generate_scene, write_scene_dataset, sample_photos

    scene = generate_scene(seed=0, size=512)   # scene.image (H, W, 3) uint8, scene.nodes
    write_scene_dataset("runs/scenes", n=100, seed=0)   # images/ + annotations.json (COCO)
"""

from unsamv2.scenes.config import GENERATOR_VERSION, Scene, SceneConfig, SceneNode
from unsamv2.scenes.dataset import scene_to_coco, write_scene_dataset
from unsamv2.scenes.generator import generate_scene, iter_scenes, scene_seed
from unsamv2.scenes.overview import render_overview
from unsamv2.scenes.photos import SAMPLE_PHOTO_NAMES, sample_photos, write_sample_photos

__all__ = [
    "GENERATOR_VERSION",
    "SAMPLE_PHOTO_NAMES",
    "Scene",
    "SceneConfig",
    "SceneNode",
    "generate_scene",
    "iter_scenes",
    "render_overview",
    "sample_photos",
    "scene_seed",
    "scene_to_coco",
    "write_sample_photos",
    "write_scene_dataset",
]
