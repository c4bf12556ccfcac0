"""Prefect tasks that prepare inputs: procedural scenes and the bundled sample photos."""

from __future__ import annotations

from prefect import get_run_logger, task


@task(name="make-demo-inputs")
def make_demo_inputs(out_uri: str, scenes: int, seed: int, size: int, photos: bool = True) -> dict[str, str]:
    """Write procedural scenes (images + exact COCO ground truth) and sample photos under ``out_uri``.

    Returns the URIs: ``images`` (a folder with both), ``ground_truth`` (the scenes' COCO JSON).
    """
    from unsamv2.data import storage
    from unsamv2.scenes import write_sample_photos, write_scene_dataset

    images = storage.join(out_uri, "images")
    gt = write_scene_dataset(storage.join(images, "scenes"), n=scenes, seed=seed, size=size)
    written = write_sample_photos(storage.join(images, "photos")) if photos else []
    get_run_logger().info("wrote %d scenes and %d photos under %s", scenes, len(written), images)
    return {"images": images, "ground_truth": gt}
