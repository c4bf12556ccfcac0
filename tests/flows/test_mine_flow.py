"""The ``mine`` flow end to end with the real miner, on the Prefect test harness."""

import asyncio
import os

import pytest
from support.scene_images import write_scene_pngs

from flows.mine import mine

pytestmark = pytest.mark.integration


@pytest.fixture
def images(tmp_path):
    folder = write_scene_pngs(tmp_path / "images", 3, seed=5, size=160)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "empty.png").write_bytes(b"")
    return folder


async def _artifact_keys():
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {a.key for a in await client.read_artifacts()}


def test_mine_flow_writes_table_stats_and_artifacts(prefect_harness, images, tmp_path):
    out = str(tmp_path / "table")
    result = mine(input_uri=str(images), output_uri=out, shard_size=2, backend="local", val_fraction=0.5)
    summary, stats = result["summary"], result["stats"]
    assert summary["images"] == 5 and summary["ok_images"] == 3
    assert summary["errors"] == {"empty": 1, "not_an_image": 1}
    assert summary["masks"] >= 3 and stats["masks"] == summary["masks"]
    assert os.path.exists(os.path.join(out, "stats", "split.parquet"))
    assert {"mine-progress", "mine-summary", "mine-report"} <= asyncio.run(_artifact_keys())
    rerun = mine(input_uri=str(images), output_uri=out, shard_size=2, backend="local", statistics=False)
    assert rerun["summary"]["shards_written"] == 0 and rerun["summary"]["shards_skipped"] == 3


def test_flow_parameters_are_validated(prefect_harness, tmp_path):
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError):
        mine(input_uri=str(tmp_path), output_uri=str(tmp_path / "o"), shard_size=0)


@pytest.mark.slow
def test_mine_flow_on_local_ray_scenes_photos_and_broken_files(prefect_harness, tmp_path):
    """The issue's end-to-end case: local Ray (2 CPUs, 2 actors), the real miner, procedural scenes,
    the sample photos and every broken-file kind: one row per input, the right statuses, masks for
    every good image; a rerun recomputes nothing; deleting one marker recomputes only that shard."""
    import ray
    from support.broken_images import write_broken_images

    from unsamv2.backends.ray_data import init_ray
    from unsamv2.data import read_mask_table
    from unsamv2.scenes import write_sample_photos

    folder = write_scene_pngs(tmp_path / "images" / "scenes", 3, seed=7, size=192)
    write_sample_photos(str(tmp_path / "images" / "photos"))
    expected = {f"scenes/{p.name}": "ok" for p in folder.iterdir()}
    expected |= {f"photos/{p.name}": "ok" for p in (tmp_path / "images" / "photos").iterdir()}
    expected |= {f"broken/{k}": v for k, v in write_broken_images(tmp_path / "images" / "broken").items()}
    out = str(tmp_path / "table")
    init_ray(None, include_dashboard=False, num_cpus=2)
    try:
        def run():
            return mine(input_uri=str(tmp_path / "images"), output_uri=out, shard_size=4, backend="ray", actors=2,
                        batch_size=2, statistics=False)["summary"]

        first = run()
        table = read_mask_table(out)
        rows = {os.path.relpath(r["image_uri"], tmp_path / "images"): r for r in table.to_pylist()}
        assert first["images"] == table.num_rows == len(rows) == len(expected)
        assert {k: r["status"] if r["status"] == "ok" else r["error"] for k, r in rows.items()} == expected
        assert all(r["masks"] for r in rows.values() if r["status"] == "ok"), "a good image got no mask"
        again = run()
        assert (again["shards_written"], again["shards_skipped"]) == (0, first["shards_total"])
        os.remove(os.path.join(out, "shards", "shard-000002", "_SUCCESS"))
        third = run()
        assert (third["shards_written"], third["images"]) == (1, 4)
        assert read_mask_table(out).to_pylist() == table.to_pylist()
    finally:
        ray.shutdown()
