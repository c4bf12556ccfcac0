"""The ``mine`` flow end to end, once in the suite: on the Prefect test harness and a local Ray with
the real miner; and its parameter validation."""

import asyncio
import os
from collections import Counter

import pytest
from support.scene_images import write_scene_pngs

pytestmark = pytest.mark.integration


async def _artifact_keys():
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {a.key for a in await client.read_artifacts()}


def test_flow_parameters_are_validated_by_the_job_before_any_work(prefect_harness, tmp_path):
    from prefect.exceptions import ParameterTypeError

    from flows.mine import mine
    from unsamv2.errors import InputError

    with pytest.raises(ParameterTypeError):  # a Literal field's values: Prefect checks the type
        mine(input_uri=str(tmp_path), output_uri=str(tmp_path / "o"), backend="spark")
    for bad, message in (({"shard_size": 0}, "shard_size must be at least 1"),
                         ({"backbone": "dinov2"}, "needs backbone_weights"),
                         ({"val_fraction": 1.0}, r"val_fraction must lie in \[0, 1\)")):
        with pytest.raises(InputError, match=message):
            mine(input_uri=str(tmp_path), output_uri=str(tmp_path / "o"), **bad)
    assert not (tmp_path / "o").exists()  # refused before the manifest was planned


@pytest.mark.slow
def test_mine_flow_on_local_ray_scenes_photos_and_broken_files(prefect_harness, tmp_path):
    """Local Ray (2 CPUs, 2 actors), the real miner, procedural scenes, the sample photos and every
    broken-file kind: one row per input, the right statuses and error counts, masks for every good
    image, statistics and the split, the flow's artifacts; a rerun recomputes nothing; deleting one
    marker recomputes only that shard."""
    import ray
    from support.broken_images import write_broken_images

    from flows.mine import mine
    from unsamv2.backends.ray_runtime import init_ray
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
        def run(**options):
            return mine(input_uri=str(tmp_path / "images"), output_uri=out, shard_size=4, backend="ray", actors=2,
                        batch_size=2, **options)

        result = run(val_fraction=0.5)
        first, stats = result["summary"], result["stats"]
        table = read_mask_table(out)
        rows = {os.path.relpath(r["image_uri"], tmp_path / "images"): r for r in table.to_pylist()}
        assert first["images"] == table.num_rows == len(rows) == len(expected)
        assert {k: r["status"] if r["status"] == "ok" else r["error"] for k, r in rows.items()} == expected
        assert all(r["masks"] for r in rows.values() if r["status"] == "ok"), "a good image got no mask"
        assert first["ok_images"] == sum(v == "ok" for v in expected.values())
        assert first["errors"] == dict(Counter(v for v in expected.values() if v != "ok"))
        assert stats["masks"] == first["masks"] == sum(len(r["masks"]) for r in rows.values())
        assert os.path.exists(os.path.join(out, "stats", "split.parquet"))
        assert {"mine-progress", "mine-summary", "mine-report"} <= asyncio.run(_artifact_keys())
        again = run(statistics=False)["summary"]
        assert (again["shards_written"], again["shards_skipped"]) == (0, first["shards_total"])
        os.remove(os.path.join(out, "shards", "shard-000002", "_SUCCESS"))
        third = run(statistics=False)["summary"]
        assert (third["shards_written"], third["images"]) == (1, 4)
        assert read_mask_table(out).to_pylist() == table.to_pylist()
    finally:
        ray.shutdown()
