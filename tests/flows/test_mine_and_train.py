"""The ``mine-and-train`` flow's parameter validation and its Ray Job training task, on the Prefect
test harness. The flow itself runs end to end once in the suite, through its deployment on the
local stack: tests/infra/test_stack_integration.py."""

import os

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def images(tmp_path):
    from PIL import Image

    from unsamv2.scenes import iter_scenes

    folder = tmp_path / "images"
    folder.mkdir()
    for i, scene in enumerate(iter_scenes(4, seed=5, size=128)):
        Image.fromarray(scene.image).save(folder / f"scene_{i}.png")
    return folder


def test_parameters_are_validated_before_any_work(prefect_harness, images, tmp_path):
    """Each nested dict is validated by its job (rules: tests/jobs/test_mine_and_train_plan.py)."""
    from prefect.exceptions import ParameterTypeError

    from flows.mine_and_train import mine_and_train
    from unsamv2.errors import InputError

    with pytest.raises(ParameterTypeError):
        mine_and_train(input_uri=str(images), output_uri=str(tmp_path / "a"), train_backend="slurm")
    for name, (bad, message) in enumerate([
            ({"training": {"max_steps": 0}}, "max_steps must be an integer >= 1"),
            ({"evaluation": {"scenes": "scenes:three"}}, "scenes:<n>:<seed>:<size>"),
            ({"training": {"model_config": "sam2.1_hiera_s"}}, "needs base_checkpoint"),
            ({"mining": {"features": "dinov2"}}, r"unknown mining parameters \['features'\]"),
            ({"train_backend": "ray-job"}, "needs job_address")]):
        with pytest.raises(InputError, match=message):
            mine_and_train(input_uri=str(images), output_uri=str(tmp_path / str(name)), **bad)
        assert not os.path.exists(tmp_path / str(name) / "mask_table")


def test_training_as_a_ray_job_is_submitted_once(prefect_harness, tmp_path, monkeypatch):
    """The ray-job backend: the job trains, and a second call (what a Prefect retry does) attaches to
    the same job instead of starting another (log forwarding: tests/backends/test_ray_train.py)."""
    import sys

    import ray
    from prefect import flow
    from ray.job_submission import JobSubmissionClient
    from support.train_data import write_scene_table

    from tasks.training import submit_training_job
    from unsamv2.backends.ray_runtime import init_ray
    from unsamv2.backends.ray_train import RayTrainOptions
    from unsamv2.train import TrainConfig

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])  # job's python
    # A forwarded setting (as under the moto fixture): the job carries it, its driver must not set it again.
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    table = write_scene_table(str(tmp_path / "data"), n=4, size=96)
    config = TrainConfig(table_uri=table["table"], output_uri=str(tmp_path / "run"), max_steps=2, batch_size=1,
                         max_masks_per_image=2, correction_clicks=1, checkpoint_every=1, val_images=0,
                         use_split=False)
    options = RayTrainOptions(workers=1, gpus_per_worker=0.0)
    url = init_ray(None, include_dashboard=True, num_cpus=2)
    try:
        @flow
        def twice():
            first = submit_training_job(config, options, url, poll_seconds=1)
            again = submit_training_job(config, options, url, poll_seconds=1)
            return first, again

        first, again = twice()
        jobs = [j.submission_id for j in JobSubmissionClient(url).list_jobs() if j.submission_id]
    finally:
        ray.shutdown()
    assert first["submission_id"] == again["submission_id"] and jobs == [first["submission_id"]]
    assert first["steps"] == 2 and os.path.exists(os.path.join(first["checkpoint_uri"], "_SUCCESS"))
    assert os.path.exists(tmp_path / "run" / "train_config.json")
