"""Fixtures of the training tests."""

import pytest
from support.train_data import write_scene_table


@pytest.fixture(scope="session")
def scene_table(tmp_path_factory) -> dict[str, str]:
    """4 procedural scenes at 96 px as a 2-shard mask table with a train/val split."""
    return write_scene_table(str(tmp_path_factory.mktemp("scene_table")))
