"""Procedural scenes written as PNG files: the input folders of the mining and flow tests."""

from __future__ import annotations

from pathlib import Path


def write_scene_pngs(folder: Path, n: int, seed: int, size: int, prefix: str = "scene_") -> Path:
    """Write ``n`` scenes (seed ``seed``, ``size`` px) as ``<prefix><i>.png`` into ``folder``."""
    from PIL import Image

    from unsamv2.scenes import iter_scenes

    folder.mkdir(parents=True, exist_ok=True)
    for i, scene in enumerate(iter_scenes(n, seed=seed, size=size)):
        Image.fromarray(scene.image).save(folder / f"{prefix}{i:02d}.png")
    return folder
