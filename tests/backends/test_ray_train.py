"""Ray backends of training: Ray Train with 2 CPU workers (DDP over gloo) trains a few steps,
checkpoints, and a rerun resumes; Ray Jobs submission is once-only under a stable id."""

import os

import pytest
import torch
from support.train_data import write_scene_table

from unsamv2.train import TrainConfig
from unsamv2.train.checkpoint import latest_checkpoint, read_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with its dashboard (the job server); yields the dashboard URL."""
    import ray

    from unsamv2.backends.ray_runtime import init_ray

    url = init_ray(None, include_dashboard=True, num_cpus=2)
    yield url
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
        workers=2, gpus_per_worker=0.0, run_name=f"unsamv2-train-{config.config_hash()}"))
    assert more["start_step"] == 2 and more["steps"] == 3 and more["losses"][:2] == result["losses"]


def _wait_for_job_server(url: str) -> None:
    import time

    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + 120
    while True:
        try:
            JobSubmissionClient(url).list_jobs()
            return
        except Exception:  # noqa: BLE001 - the dashboard may still be starting
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def test_ray_job_is_submitted_once_and_its_log_forwarded(ray_local):
    from ray.job_submission import JobSubmissionClient

    from unsamv2.backends.ray_jobs import follow_job, stable_submission_id, submit_or_attach

    _wait_for_job_server(ray_local)
    base = stable_submission_id("unsamv2-test", "flow-run-1", "cfg")
    assert base == stable_submission_id("unsamv2-test", "flow-run-1", "cfg") != stable_submission_id("x", "y")
    entry = "python -c \"print('hello from the job'); print('second line')\""
    first = submit_or_attach(ray_local, base, entry)
    lines: list[str] = []
    assert follow_job(ray_local, first.submission_id, lines.append, poll_seconds=0.5) == "SUCCEEDED"
    assert "hello from the job" in lines and "second line" in lines
    retry = submit_or_attach(ray_local, base, entry)  # what a Prefect retry does
    assert retry == type(first)(base, True) and not first.attached
    ids = [j.submission_id for j in JobSubmissionClient(ray_local).list_jobs() if j.submission_id]
    assert ids.count(base) == 1 and not any(i.startswith(base + "-retry-") for i in ids)

    failing = stable_submission_id("unsamv2-test", "flow-run-2", "cfg")
    bad = submit_or_attach(ray_local, failing, "python -c 'import sys; sys.exit(3)'")
    assert follow_job(ray_local, bad.submission_id, lambda line: None, poll_seconds=0.5) == "FAILED"
    again = submit_or_attach(ray_local, failing, "python -c 'print(1)'")
    assert again.submission_id == failing + "-retry-1" and not again.attached
