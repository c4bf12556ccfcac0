"""The ``pretrain`` flow on the Prefect test harness: its ``training`` dict is validated before any
work, and two steps on a tiny ground-truth table give a ``sam2.pt`` that loads strictly as the
``base`` SAM-2 (the recipe itself: tests/train/test_pretrain.py)."""

import asyncio
import json
import os

import pytest

pytestmark = pytest.mark.integration

TINY = {"max_steps": 2, "checkpoint_every": 1, "batch_size": 1, "max_masks_per_image": 2,
        "correction_clicks": 1, "val_images": 0, "device": "cpu"}


async def _artifact_keys():
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {a.key for a in await client.read_artifacts()}


def test_training_is_validated_over_the_pretrain_defaults_before_any_work(prefect_harness, tmp_path):
    from prefect.exceptions import ParameterTypeError

    from flows.pretrain import pretrain
    from unsamv2.errors import InputError

    table, out = str(tmp_path / "table"), tmp_path / "out"
    with pytest.raises(ParameterTypeError):  # a Literal: Prefect checks the type
        pretrain(table_uri=table, output_uri=str(out), train_backend="slurm")
    for bad, message in (({"training": {"max_steps": 0}}, "max_steps must be an integer >= 1"),
                         ({"training": {"trainable": "adapter"}}, "trains every SAM-2 weight"),
                         ({"training": {"output_uri": "x"}}, "leave it out of training"),
                         ({"training": {"steps": 5}}, r"unknown keys \['steps'\]"),
                         ({"ray_train": {"gpus": 1}}, r"ray_train has unknown keys \['gpus'\]")):
        with pytest.raises(InputError, match=message):
            pretrain(table_uri=table, output_uri=str(out), **bad)
        assert not out.exists()


def test_two_steps_give_a_sam2_pt_that_loads_strictly_as_the_base(prefect_harness, tmp_path):
    import torch
    from support.train_data import write_scene_table

    from flows.pretrain import pretrain
    from unsamv2.model import build_sam2

    table = write_scene_table(str(tmp_path / "data"), n=3, size=64)
    result = pretrain(table_uri=table["table"], output_uri=str(tmp_path / "run"), training=TINY)
    assert json.loads(json.dumps(result)) == result  # JSON-ready: URIs and numbers
    assert result["steps"] == 2 and result["training"]["config_hash"]
    assert result["final_loss"] is not None and result["first_loss"] is not None
    weights = result["weights_uri"]
    assert weights == os.path.join(result["checkpoint_uri"], "sam2.pt")
    assert os.path.basename(result["checkpoint_uri"]) == "step-000002"
    assert os.path.exists(os.path.join(result["checkpoint_uri"], "_SUCCESS"))
    model = build_sam2("base", checkpoint=weights)  # strict: a missing or extra key raises
    state = torch.load(weights, weights_only=True)["model"]
    assert set(state) == set(model.state_dict())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert "pretrain-progress" in asyncio.run(_artifact_keys())
