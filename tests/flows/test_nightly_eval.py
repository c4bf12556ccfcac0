"""The ``nightly-eval`` flow: a checkpoint from the registry is evaluated, reported and recorded;
a deliberately broken checkpoint evaluated next is flagged as a regression and the run fails."""

import json
import os
import shutil

import pytest


def _train_one_step(root):
    from support.train_data import write_scene_table

    from unsamv2.train import TrainConfig, train

    data = write_scene_table(os.path.join(root, "data"), n=2, size=96)
    config = TrainConfig(table_uri=data["table"], output_uri=os.path.join(root, "registry", "run-a"),
                         use_split=False, trainable="full", max_steps=1, checkpoint_every=1, lr=1e-9, min_lr=1e-10)
    return train(config).checkpoint_uri


def _break_decoder(checkpoint, target):
    """Copy a checkpoint and rewrite its mask decoder so every mask logit is about -27 (empty masks)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(checkpoint, target)
    path = os.path.join(target, "model.safetensors")
    state = load_file(path)
    prefix = "sam_mask_decoder."
    for name in ("conv_s0", "conv_s1", "output_upscaling.0", "output_upscaling.3"):
        state[f"{prefix}{name}.weight"].zero_()
        state[f"{prefix}{name}.bias"].zero_()
    state[f"{prefix}output_upscaling.1.bias"].zero_()
    state[f"{prefix}output_upscaling.3.bias"].fill_(1.0)  # GELU(1) ~ 0.84 in every channel
    state[f"{prefix}granularity_mlp.layers.2.weight"].zero_()
    state[f"{prefix}granularity_mlp.layers.2.bias"].fill_(-1.0)
    save_file(state, path)
    _complete_later(os.path.join(target, "_SUCCESS"))  # the newest checkpoint of the registry


def _complete_later(marker, seconds=1.0):
    """Record a completion time ``seconds`` after the one the (copied) marker holds."""
    from datetime import datetime, timedelta

    data = json.loads(open(marker).read())
    data["completed_at"] = (datetime.fromisoformat(data["completed_at"]) + timedelta(seconds=seconds)).isoformat()
    with open(marker, "w") as f:
        json.dump(data, f)


async def _artifact_keys():
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {a.key for a in await client.read_artifacts()}


@pytest.mark.integration
@pytest.mark.slow
def test_nightly_eval_reports_then_flags_a_worse_checkpoint(prefect_harness, tmp_path):
    """Evaluated as a Ray task (local Ray, no GPU), with the oracle, a fixed g, the SAM-2 baseline
    and whole-image AR; the second, broken checkpoint fails the run."""
    import asyncio

    import ray
    from prefect.states import State

    from flows.nightly_eval import nightly_eval

    good = _train_one_step(str(tmp_path))
    registry, store = str(tmp_path / "registry"), str(tmp_path / "store")
    params = dict(report_store=store, registry_uri=registry, scenes="scenes:1:1000:96", max_clicks=2,
                  policies=["oracle", "g=1", "sam2-single"], whole_image=True, points_per_side=4,
                  ray_address="local", gpus=0.0)
    try:
        first = nightly_eval(**params)
        assert first["regressed"] is False and "nothing to compare" in first["verdict"]
        assert first["metrics"]["scenes-objects/g=1/1-IoU"] > 0.0
        assert {"scenes-objects/oracle/NoC85", "scenes-objects/sam2-single/1-IoU",
                "scenes-objects/whole/AR1000"} <= set(first["metrics"]), sorted(first["metrics"])
        for kind in ("json", "markdown", "html"):
            assert os.path.exists(first["files"][kind])
        html = open(first["files"]["html"]).read()
        assert html.count("data:image/png;base64,") >= 5  # curves, NoC bars, g sweep, chosen g, AR by g, gallery
        assert {"nightly-eval-metrics", "nightly-eval-report", "nightly-eval-html"} <= asyncio.run(_artifact_keys())

        _break_decoder(good, str(tmp_path / "registry" / "run-b" / "checkpoints" / "step-000001"))
        second = nightly_eval(**params, return_state=True)
    finally:
        ray.shutdown()

    assert isinstance(second, State) and second.is_failed()
    assert "regression" in second.message
    verdict_files = sorted((tmp_path / "store" / "runs").glob("*/verdict.json"))
    assert json.loads(verdict_files[-1].read_text())["regressed"] is True


def test_registry_picks_the_checkpoint_completed_last_by_its_marker(tmp_path):
    """The recorded completion time decides, not the step and not the file time; a marker without
    a time (an older unsamv2) counts as oldest."""
    from unsamv2.errors import InputError
    from unsamv2.eval.registry import newest_checkpoint, resolve_checkpoint

    def checkpoint(run, step, marker):
        folder = tmp_path / run / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        (folder / "_SUCCESS").write_text(json.dumps(marker))
        return folder

    checkpoint("old", 9000, {"step": 9000, "completed_at": "2026-01-01T00:00:00+00:00"})
    checkpoint("new", 500, {"step": 500, "completed_at": "2026-03-01T00:00:00+00:00"})
    undated = checkpoint("undated", 9999, {"step": 9999})
    os.utime(undated / "_SUCCESS", (4e9, 4e9))  # the newest file of all: file times do not count
    (tmp_path / "c" / "checkpoints" / "step-009999").mkdir(parents=True)  # incomplete: no marker
    assert newest_checkpoint(str(tmp_path)).endswith("new/checkpoints/step-000500")
    checkpoint("new", 501, {"step": 501, "completed_at": "2026-03-01T00:00:00+00:00"})  # same time: higher step
    assert newest_checkpoint(str(tmp_path)).endswith("new/checkpoints/step-000501")
    assert resolve_checkpoint(None, str(tmp_path)) == newest_checkpoint(str(tmp_path))
    assert resolve_checkpoint("/x/ckpt/", None) == "/x/ckpt"
    with pytest.raises(InputError, match="no complete training checkpoint"):
        newest_checkpoint(str(tmp_path / "c"))
    with pytest.raises(InputError, match="give a checkpoint"):
        resolve_checkpoint(None, None)
