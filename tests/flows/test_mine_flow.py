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
