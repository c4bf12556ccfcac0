"""The mine job on local Ray (2 CPUs): same rows as local, reruns, a killed actor, S3 output."""

import os

import pytest
from support import faults
from support.broken_images import write_broken_images

from unsamv2.data import read_mask_table
from unsamv2.jobs.mine import MineJob, run_mine

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_cluster(moto_s3):
    import ray

    from unsamv2.backends.ray_runtime import init_ray

    init_ray(None, include_dashboard=False, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    return folder, write_broken_images(folder)


def _job(folder, out, **kw):
    return MineJob(str(folder), str(out), shard_size=3, miner_kind="noop", backend="ray", actors=2, **kw)


def _rows(table):
    return sorted(table.drop_columns(["producer_config_hash"]).to_pylist(), key=lambda r: r["image_id"])


def test_ray_matches_local_and_reruns_skip(ray_cluster, inputs, tmp_path):
    folder, expected = inputs
    local = run_mine(MineJob(str(folder), str(tmp_path / "local"), shard_size=3, miner_kind="noop"))
    summary = run_mine(_job(folder, tmp_path / "ray"))
    assert summary.images == local.images == len(expected) and summary.errors == local.errors
    assert _rows(read_mask_table(str(tmp_path / "ray"))) == _rows(read_mask_table(str(tmp_path / "local")))
    again = run_mine(_job(folder, tmp_path / "ray"))
    assert (again.shards_written, again.shards_skipped) == (0, 4)


def test_actor_killed_mid_shard_still_gives_a_complete_duplicate_free_table(ray_cluster, inputs, tmp_path, monkeypatch):
    folder, expected = inputs
    once = tmp_path / "died-once"
    faults.inject(monkeypatch, die_after=2, once_file=str(once))
    summary = run_mine(_job(folder, tmp_path / "out", batch_size=3))
    assert once.exists()  # an actor really exited mid-run
    table = read_mask_table(str(tmp_path / "out"))
    ids = table.column("image_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(expected)
    assert sorted(os.path.basename(u) for u in table.column("image_uri").to_pylist()) == sorted(expected)
    assert summary.images == len(expected)


def test_a_poison_image_that_kills_every_worker_becomes_a_crashed_row(ray_cluster, inputs, tmp_path, monkeypatch):
    """An image that kills its actor on every attempt: once it has killed a restarted actor it is
    recorded as 'crashed' instead of mined again, the run completes, and its batch neighbours get
    their real rows."""
    folder, expected = inputs
    faults.inject(monkeypatch, poison="rgba.png")
    summary = run_mine(_job(folder, tmp_path / "out", batch_size=3))
    rows = {os.path.basename(r["image_uri"]): r for r in read_mask_table(str(tmp_path / "out")).to_pylist()}
    assert len(rows) == len(expected) == summary.images
    crashed = rows.pop("rgba.png")
    assert crashed["error"] == "crashed" and "also after a restart" in crashed["error_message"]
    assert {k: r["error"] or r["status"] for k, r in rows.items()} == {k: v for k, v in expected.items() if k != "rgba.png"}


def test_ray_run_reads_from_and_writes_to_s3(ray_cluster, inputs, s3_bucket, tmp_path):
    """Actors read every image from S3 and the table goes to S3: the same rows as a local run."""
    from unsamv2.data import storage

    folder, expected = inputs
    for name in expected:
        storage.write_bytes(f"{s3_bucket}/images/{name}", (folder / name).read_bytes())
    out = f"{s3_bucket}/mined"
    summary = run_mine(_job(f"{s3_bucket}/images", out))
    table = read_mask_table(out)
    assert table.num_rows == len(expected) == summary.images
    assert {os.path.basename(u) for u in table.column("image_uri").to_pylist()} == set(expected)
    local = read_mask_table(run_mine(_job(folder, tmp_path / "local")).output_uri)
    assert _rows(table.drop_columns(["image_uri"])) == _rows(local.drop_columns(["image_uri"]))  # same ids too
    assert run_mine(_job(f"{s3_bucket}/images", out)).shards_written == 0


def test_actor_metrics_reach_the_prometheus_endpoint(tmp_path):
    """Run on a fresh local Ray with a metrics port and scrape it while the actors work."""
    import threading
    import time
    import urllib.request

    import ray
    from support.net import free_port
    from support.scene_images import write_scene_pngs

    ray.shutdown()
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=True, _metrics_export_port=port)
    try:
        folder = write_scene_pngs(tmp_path / "imgs", 12, seed=1, size=192)
        job = MineJob(str(folder), str(tmp_path / "out"), shard_size=4, backend="ray", actors=1, batch_size=1)
        worker = threading.Thread(target=run_mine, args=(job,))
        worker.start()
        seen: set[str] = set()
        deadline = None  # after the run, keep scraping a while: the export lags the actors' counters
        while True:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            seen |= {line.split("{")[0] for line in text.splitlines() if line.startswith("ray_unsamv2_miner")}
            if not worker.is_alive():
                deadline = deadline or time.monotonic() + 30
                both = "ray_unsamv2_miner_images_total" in seen and any(
                    name.startswith("ray_unsamv2_miner_seconds_per_image") for name in seen)
                if both or time.monotonic() > deadline:
                    break
            time.sleep(1.0)
        worker.join()
        assert "ray_unsamv2_miner_images_total" in seen, seen
        assert any(name.startswith("ray_unsamv2_miner_seconds_per_image") for name in seen), seen
    finally:
        ray.shutdown()


def test_ray_client_addresses_are_refused_with_a_clear_sentence():
    from unsamv2.backends.ray_runtime import init_ray
    from unsamv2.errors import InputError

    with pytest.raises(InputError, match="Ray Client"):
        init_ray("ray://head:10001")


def test_a_ray_job_driver_does_not_forward_what_the_job_already_sets(monkeypatch):
    """Ray refuses a ray.init in a job's driver that sets an env var the job's runtime env sets;
    UNSAMV2_FAULT_* (old test switches) never reach a worker."""
    import json

    from unsamv2.backends.ray_runtime import FORWARDED_ENV, _forwarded_env

    for key in [k for k in os.environ if k.startswith("UNSAMV2_") or k in FORWARDED_ENV]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("UNSAMV2_RAY_GPU_LIMIT", "gpu")
    monkeypatch.setenv("UNSAMV2_FAULT_DIE_AFTER", "3")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert _forwarded_env() == {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "UNSAMV2_RAY_GPU_LIMIT": "gpu"}
    job = {"runtime_env": {"env_vars": {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}}, "metadata": {}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    assert _forwarded_env() == {"UNSAMV2_RAY_GPU_LIMIT": "gpu"}
