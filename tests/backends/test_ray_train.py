"""Ray Train backend: 2 CPU workers (DDP over gloo) train a few steps, checkpoint, and a rerun resumes."""

import os

import pytest
import torch
from support.train_data import write_scene_table

from unsamv2.train import TrainConfig
from unsamv2.train.checkpoint import latest_checkpoint, read_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from unsamv2.backends.ray_data import init_ray

    init_ray(None, include_dashboard=False, num_cpus=2)
    yield
    ray.shutdown()


def test_two_workers_train_checkpoint_and_resume(ray_local, tmp_path):
    from unsamv2.backends.ray_train import RayTrainOptions, run_ray_train, storage_path

    table = write_scene_table(str(tmp_path / "data"), n=4, size=96)
    config = TrainConfig(table_uri=table["table"], output_uri=str(tmp_path / "run"), max_steps=2, batch_size=1,
                         max_masks_per_image=2, correction_clicks=1, checkpoint_every=1, val_images=1,
                         use_split=False, seed=3)
    options = RayTrainOptions(workers=2, cpus_per_worker=1.0, gpus_per_worker=0.0)
    result = run_ray_train(config, options)
    assert result["world_size"] == 2 and result["steps"] == 2 and len(result["losses"]) == 2
    payload = read_checkpoint(latest_checkpoint(config.output_uri))
    assert payload.step == 2 and len(payload.state["rng"]) == 2  # one RNG state per worker
    assert not torch.equal(payload.state["rng"][0]["clicks"], payload.state["rng"][1]["clicks"])
    ray_dir = os.path.join(storage_path(config, options), f"unsamv2-train-{config.config_hash()}")
    assert any(name.startswith("step-") for name in os.listdir(ray_dir)), os.listdir(ray_dir)

    # same run name and storage: the rerun continues from Ray's checkpoint at step 2
    more = run_ray_train(config.replace(max_steps=3), RayTrainOptions(
        workers=2, gpus_per_worker=0.0, name=f"unsamv2-train-{config.config_hash()}"))
    assert more["start_step"] == 2 and more["steps"] == 3 and more["losses"][:2] == result["losses"]
