"""Checkpoints you can trust: the latest pointer is run-relative, resume skips corrupt folders,
incomplete folders are refused for evaluation, a non-finite loss stops training."""

import json
import logging
import os

import pytest
import torch

from unsamv2.errors import InputError
from unsamv2.train import TrainConfig, train
from unsamv2.train.checkpoint import latest_checkpoint, load_trained_model, read_checkpoint


def small(scene_table, out, **changes):
    """A config that takes well under a second per step on the tiny model."""
    base = dict(table_uri=scene_table["table"], output_uri=str(out), model_config="tiny", max_steps=3, batch_size=1,
                max_masks_per_image=2, correction_clicks=1, checkpoint_every=1, val_images=0, seed=11)
    return TrainConfig(**{**base, **changes})


def adapter(uri):
    from unsamv2.model.adapter import read_adapter

    return read_adapter(os.path.join(uri, "adapter.safetensors"))[0]


def same(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_latest_pointer_is_relative_and_resume_from_another_directory_loads_this_run(
        scene_table, tmp_path, monkeypatch, caplog):
    """Two runs with the same relative output name in two directories: resuming one of them by
    its absolute path from the other directory must load its own checkpoint."""

    class Stop(Exception):
        pass

    def interrupt(log):
        if log.step == 3:
            raise Stop

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    train(small(scene_table, "run", max_steps=2, seed=5))  # another run, finished at step 2
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(Stop):
        train(small(scene_table, "run", max_steps=4), on_step=interrupt)
    mine = str(tmp_path / "b" / "run")
    monkeypatch.chdir(tmp_path / "a")
    assert os.path.samefile(latest_checkpoint(mine), os.path.join(mine, "checkpoints", "step-000002"))
    caplog.set_level(logging.INFO, logger="unsamv2.train.recipe")
    resumed = train(small(scene_table, mine, max_steps=4), resume=True)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("resumed from"))
    assert os.path.samefile(line.split()[2], os.path.join(mine, "checkpoints", "step-000002"))
    straight = train(small(scene_table, tmp_path / "straight", max_steps=4))
    assert resumed.losses == straight.losses
    pointer = json.loads((tmp_path / "b" / "run" / "checkpoints" / "latest.json").read_text())
    assert pointer == {"step": 4, "path": "step-000004"}  # relative to the checkpoints folder


@pytest.mark.slow
def test_latest_pointer_outside_the_run_is_ignored(scene_table, tmp_path, caplog):
    """Old pointers with an absolute path inside the run still work; one pointing elsewhere is
    ignored; the newest checkpoint is chosen by step number, never by file time."""
    other = train(small(scene_table, tmp_path / "other", max_steps=1))
    run = train(small(scene_table, tmp_path / "run", max_steps=2, keep_checkpoints=0))
    pointer = tmp_path / "run" / "checkpoints" / "latest.json"
    pointer.write_text(json.dumps({"step": 1, "path": str(tmp_path / "run" / "checkpoints" / "step-000001")}))
    assert latest_checkpoint(str(tmp_path / "run")) == run.checkpoint_uri  # newest by step number
    pointer.write_text(json.dumps({"step": 9, "path": other.checkpoint_uri}))
    with caplog.at_level(logging.WARNING, logger="unsamv2.train.checkpoint"):
        assert latest_checkpoint(str(tmp_path / "run")) == run.checkpoint_uri
    assert any("outside" in r.getMessage() for r in caplog.records)
    older = tmp_path / "run" / "checkpoints" / "step-000001"
    for path in [older, *older.iterdir()]:  # the older folder touched last: still not the latest
        os.utime(path, (2e9, 2e9))
    assert latest_checkpoint(str(tmp_path / "run")) == run.checkpoint_uri


@pytest.mark.parametrize("victim", ["state.pt", "adapter.safetensors"])
@pytest.mark.slow
def test_resume_falls_back_past_a_corrupt_latest_checkpoint(scene_table, tmp_path, caplog, victim):
    straight = train(small(scene_table, tmp_path / "straight"))
    config = small(scene_table, tmp_path / "run")
    first = train(config)
    corrupt = os.path.join(config.output_uri, "checkpoints", "step-000003")
    with open(os.path.join(corrupt, victim), "r+b") as f:  # a truncated upload, marker present
        f.truncate(os.path.getsize(os.path.join(corrupt, victim)) // 2)
    with caplog.at_level(logging.WARNING, logger="unsamv2.train.checkpoint"):
        assert latest_checkpoint(config.output_uri) == os.path.join(config.output_uri, "checkpoints", "step-000002")
    assert any(corrupt in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    resumed = train(config, resume=True)
    assert resumed.start_step == 2 and resumed.losses == straight.losses == first.losses
    assert same(adapter(resumed.checkpoint_uri), adapter(straight.checkpoint_uri))


def test_eval_refuses_a_checkpoint_without_its_marker(scene_table, tmp_path):
    from unsamv2.eval.checkpoint import evaluate_checkpoint
    from unsamv2.eval.registry import resolve_checkpoint

    result = train(small(scene_table, tmp_path, max_steps=1))
    os.remove(os.path.join(result.checkpoint_uri, "_SUCCESS"))
    expected = "has no _SUCCESS marker: it is an incomplete checkpoint; point at a complete step folder"
    with pytest.raises(InputError, match=expected):
        load_trained_model(result.checkpoint_uri)
    with pytest.raises(InputError, match=expected):
        evaluate_checkpoint(result.checkpoint_uri, str(tmp_path / "eval"), probe=False)
    with pytest.raises(InputError, match=expected):
        resolve_checkpoint(result.checkpoint_uri, None)
    with pytest.raises(InputError, match=expected):
        read_checkpoint(result.checkpoint_uri)
    with pytest.raises(InputError, match="does not exist"):
        load_trained_model(str(tmp_path / "nowhere"))


def _nan_at(monkeypatch, steps):
    """Make the training loss NaN (through the real loss, so the gradients are NaN too) at ``steps``."""
    from unsamv2.train import recipe

    real = recipe.interactive_loss
    calls = []

    def loss(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) in steps:
            out["total"] = out["total"] * float("nan")
        return out

    monkeypatch.setattr(recipe, "interactive_loss", loss)


def test_a_nan_loss_stops_training_and_writes_no_checkpoint_of_that_step(scene_table, tmp_path, monkeypatch):
    from unsamv2.train import TrainingDivergedError

    _nan_at(monkeypatch, {2})
    config = small(scene_table, tmp_path)
    with pytest.raises(TrainingDivergedError, match="not finite at step 2"):
        train(config)
    names = sorted(os.listdir(tmp_path / "checkpoints"))
    assert names == ["latest.json", "step-000001"]
    assert latest_checkpoint(config.output_uri).endswith("step-000001")


def test_a_huge_learning_rate_stops_training_with_finite_checkpoints_only(scene_table, tmp_path):
    """lr 1e30: the weights blow up after the first step; whatever is written is finite."""
    from unsamv2.train import TrainingDivergedError

    config = small(scene_table, tmp_path, lr=1e30, min_lr=1e30, max_steps=4)
    with pytest.raises(TrainingDivergedError, match="not finite"):
        train(config)
    for name in os.listdir(tmp_path / "checkpoints"):
        if name.startswith("step-"):
            assert all(torch.isfinite(t).all() for t in adapter(tmp_path / "checkpoints" / name).values()), name


@pytest.mark.slow
def test_nan_patience_skips_the_update_and_then_stops(scene_table, tmp_path, monkeypatch):
    _nan_at(monkeypatch, {2})
    config = small(scene_table, tmp_path / "tolerant", nan_patience=1, keep_checkpoints=0)
    result = train(config)
    assert result.steps == 3 and torch.isnan(torch.tensor(result.losses[1]))
    ckpt = os.path.join(config.output_uri, "checkpoints")
    assert same(adapter(os.path.join(ckpt, "step-000001")), adapter(os.path.join(ckpt, "step-000002")))
    one = read_checkpoint(os.path.join(ckpt, "step-000001")).state["optimizer"]["state"]
    two = read_checkpoint(os.path.join(ckpt, "step-000002")).state["optimizer"]["state"]
    assert all(torch.equal(one[0][k], two[0][k]) for k in one[0])  # the update was skipped

    from unsamv2.train import TrainingDivergedError

    monkeypatch.undo()
    _nan_at(monkeypatch, {2, 3})
    with pytest.raises(TrainingDivergedError, match="2 consecutive"):
        train(config.replace(output_uri=str(tmp_path / "stops")))
    assert sorted(os.listdir(tmp_path / "stops" / "checkpoints")) == ["latest.json", "step-000001", "step-000002"]


def test_nan_patience_is_validated_and_resumable(scene_table, tmp_path):
    with pytest.raises(InputError, match="nan_patience"):
        small(scene_table, tmp_path, nan_patience=-1)
    config = small(scene_table, tmp_path)
    assert config.replace(nan_patience=3).config_hash() == config.config_hash()


def test_the_cli_reports_divergence_and_a_bad_patience_in_one_sentence(scene_table, tmp_path, capsys):
    from unsamv2.cli import main

    fast = ["--steps", "3", "--batch-size", "1", "--max-masks", "2", "--clicks", "1", "--val-images", "0",
            "--checkpoint-every", "1", "--config", "tiny"]
    assert main(["train", scene_table["table"], str(tmp_path / "x"), *fast, "--nan-patience", "-1"]) == 2
    assert "nan_patience must be an integer >= 0" in capsys.readouterr().err
    out = str(tmp_path / "run")
    assert main(["train", scene_table["table"], out, *fast, "--lr", "1e30", "--min-lr", "1e30"]) == 2
    err = capsys.readouterr().err
    assert "training diverged" in err and "--nan-patience" in err and "Traceback" not in err


@pytest.mark.integration
def test_pointer_and_fallback_on_s3(scene_table, s3_bucket, caplog):
    from unsamv2.data import storage

    out = f"{s3_bucket}/runs/trust"
    train(small(scene_table, out, max_steps=2))
    assert json.loads(storage.read_text(f"{out}/checkpoints/latest.json")) == {"step": 2, "path": "step-000002"}
    assert latest_checkpoint(out) == f"{out}/checkpoints/step-000002"
    state = f"{out}/checkpoints/step-000002/state.pt"
    storage.write_bytes(state, storage.read_bytes(state)[:100])
    storage.write_text(f"{out}/checkpoints/latest.json", json.dumps({"step": 2, "path": f"{s3_bucket}/x/step-000002"}))
    with caplog.at_level(logging.WARNING, logger="unsamv2.train.checkpoint"):
        assert latest_checkpoint(out) == f"{out}/checkpoints/step-000001"
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "outside" in messages and f"{out}/checkpoints/step-000002" in messages
