"""A contact sheet of scenes and their ground truth, one column per hierarchy level.

``render_overview("docs/images/scenes_overview.png")`` regenerates the picture in docs/scenes.md.
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Sequence

import numpy as np

from unsamv2.data import storage
from unsamv2.scenes.config import Scene, SceneConfig
from unsamv2.scenes.generator import generate_scene

LEVEL_NAMES = ("objects (level 0)", "parts (level 1)", "sub-parts (level 2)", "sub-sub-parts (level 3)")


def _palette(n: int) -> np.ndarray:
    """(n, 3) float distinct colours (golden-ratio hues)."""
    return np.array([colorsys.hsv_to_rgb((0.12 + 0.618034 * i) % 1.0, 0.75, 0.95) for i in range(n)])


def level_panel(scene: Scene, level: int) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: the nodes at ``level`` in distinct colours with outlines over a
    dimmed grey copy of the image; object pixels not divided that deep stay grey."""
    grey = scene.image.astype(np.float32).mean(axis=2, keepdims=True) / 255.0
    panel = np.repeat(0.25 + 0.35 * grey, 3, axis=2)
    ids = np.zeros(scene.image.shape[:2], dtype=np.int32)
    nodes = [n for n in scene.nodes if n.level == level]
    for i, (node, colour) in enumerate(zip(nodes, _palette(len(nodes)), strict=True), start=1):
        panel[node.mask] = 0.3 * panel[node.mask] + 0.7 * colour
        ids[node.mask] = i
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:-1] |= ids[:-1] != ids[1:]
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    panel[edge] = 0.05
    return panel


def render_overview(
    out_path: str = "docs/images/scenes_overview.png",
    seeds: Sequence[int] = (0, 1, 2, 3),
    size: int = 256,
    config: SceneConfig | None = None,
) -> str:
    """Draw scenes ``seeds`` (rows) as image + one ground-truth panel per level, save a PNG, return its path.

    The figure is quantised to 256 colours to keep the file small (a few hundred KB).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    scenes = [generate_scene(int(s), size, config) for s in seeds]
    depth = max((n.level for sc in scenes for n in sc.nodes), default=0) + 1
    cols = 1 + depth
    fig, axes = plt.subplots(len(scenes), cols, figsize=(2.2 * cols, 2.2 * len(scenes)), squeeze=False)
    for row, scene in enumerate(scenes):
        panels = [scene.image] + [level_panel(scene, lv) for lv in range(depth)]
        for col, (ax, panel) in enumerate(zip(axes[row], panels, strict=True)):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("image" if col == 0 else LEVEL_NAMES[col - 1], fontsize=8)
        counts = np.bincount([n.level for n in scene.nodes], minlength=depth)
        axes[row][0].set_ylabel(f"seed {scene.seed}\n" + "/".join(str(c) for c in counts), fontsize=7)
    fig.tight_layout(pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    buf.seek(0)
    small = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(colors=256).save(small, format="PNG", optimize=True)
    storage.write_bytes(out_path, small.getvalue())
    return out_path
