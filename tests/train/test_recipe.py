"""The recipe: which parameters train, exact resume, checkpoints, refusals."""

import os

import pytest
import torch

from unsamv2.errors import InputError
from unsamv2.train import TrainConfig, train
from unsamv2.train.checkpoint import (
    completed_at,
    latest_checkpoint,
    load_trained_model,
    read_checkpoint,
)


def small(scene_table, out, **changes):
    """A config that takes well under a second per step on the tiny model."""
    base = dict(table_uri=scene_table["table"], output_uri=str(out), model_config="tiny", max_steps=4, batch_size=1,
                max_masks_per_image=2, correction_clicks=1, checkpoint_every=2, val_images=1, seed=11)
    return TrainConfig(**{**base, **changes})


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_adapter_mode_changes_only_adapter_parameters(scene_table, tmp_path, monkeypatch):
    """The model the recipe trained, in memory after a real step: every frozen tensor bit-identical,
    the adapter moved, and the checkpoint holds what the model holds."""
    from unsamv2.model import build
    from unsamv2.model.checkpoint import is_adapter_key

    trained = []

    def capture(*args, **kwargs):
        trained.append(real_build(*args, **kwargs))
        return trained[-1]

    real_build = build.build_model
    monkeypatch.setattr(build, "build_model", capture)
    result = train(small(scene_table, tmp_path, max_steps=1))
    monkeypatch.undo()
    before = weights(real_build("tiny"))
    after = weights(trained[0])
    assert result.trainable_parameters == 345_760 and result.steps == 1
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "one step must move the adapter"
    assert all(is_adapter_key(k) for k in changed), sorted(k for k in changed if not is_adapter_key(k))[:5]
    loaded = weights(load_trained_model(result.checkpoint_uri))
    assert all(torch.equal(after[k], loaded[k]) for k in after)
    assert not os.path.exists(os.path.join(result.checkpoint_uri, "model.safetensors"))


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(scene_table, tmp_path):
    straight = train(small(scene_table, tmp_path / "straight"))

    class Stop(Exception):
        pass

    def interrupt(log):
        if log.step == 3:
            raise Stop

    config = small(scene_table, tmp_path / "resumed")
    with pytest.raises(Stop):
        train(config, on_step=interrupt)
    assert read_checkpoint(latest_checkpoint(config.output_uri)).step == 2
    resumed = train(config, resume=True)
    assert resumed.start_step == 2 and resumed.steps == 4
    assert resumed.losses == straight.losses  # exact, the first two come from the checkpoint
    a = weights(load_trained_model(straight.checkpoint_uri))
    b = weights(load_trained_model(resumed.checkpoint_uri))
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = read_checkpoint(straight.checkpoint_uri).state, read_checkpoint(resumed.checkpoint_uri).state
    assert sa["position"] == sb["position"]
    assert all(torch.equal(x, y) for x, y in zip(sa["optimizer"]["state"][0].values(),
                                                 sb["optimizer"]["state"][0].values(), strict=True))
    # resuming a finished run is a no-op that returns the same result
    again = train(config, resume=True)
    assert again.checkpoint_uri == resumed.checkpoint_uri and again.losses == resumed.losses


@pytest.mark.slow
def test_full_mode_trains_every_weight_and_writes_them(scene_table, tmp_path):
    from unsamv2.model import build_model

    result = train(small(scene_table, tmp_path, max_steps=2, trainable="full", val_images=0))
    assert result.model_uri and os.path.exists(result.model_uri) and os.path.exists(result.adapter_uri)
    before = weights(build_model("tiny"))
    after = weights(load_trained_model(result.checkpoint_uri))
    assert not torch.equal(before["image_encoder.trunk.patch_embed.proj.weight"],
                           after["image_encoder.trunk.patch_embed.proj.weight"])
    assert os.path.exists(os.path.join(str(tmp_path), "summary.json"))
    assert os.path.exists(os.path.join(str(tmp_path), "loss.png"))


@pytest.mark.slow
def test_checkpoints_are_periodic_complete_and_pruned(scene_table, tmp_path):
    result = train(small(scene_table, tmp_path, max_steps=5, checkpoint_every=1, keep_checkpoints=2))
    names = sorted(os.listdir(tmp_path / "checkpoints"))
    assert names == ["latest.json", "step-000004", "step-000005"]
    payload = read_checkpoint(result.checkpoint_uri)
    assert payload.step == 5 and len(payload.state["losses"]) == 5
    assert set(payload.meta["metrics"]) >= {"loss", "val_loss", "val_iou_click1"}
    assert set(os.listdir(result.checkpoint_uri)) == {"adapter.safetensors", "state.pt", "meta.json", "_SUCCESS"}
    # each marker records when its folder was completed (what a registry's newest checkpoint is chosen by)
    times = [completed_at(str(tmp_path / "checkpoints" / name)) for name in ("step-000004", "step-000005")]
    assert None not in times and times[0] <= times[1] and times[1].tzinfo is not None


def test_refusals(scene_table, tmp_path):
    config = small(scene_table, tmp_path, max_steps=1, val_images=0)
    train(config)
    with pytest.raises(InputError, match="--resume"):
        train(config)
    with pytest.raises(InputError, match="other settings .*lr"):
        train(config.replace(lr=3e-4, max_steps=2), resume=True)
    with pytest.raises(InputError, match="max_steps"):
        TrainConfig(table_uri="t", output_uri="o", max_steps=0)
    with pytest.raises(InputError, match="human_coco_uri"):
        TrainConfig(table_uri="t", output_uri="o", human_fraction=0.2)
    with pytest.raises(InputError, match="unknown keys"):
        TrainConfig.from_dict({"table_uri": "t", "output_uri": "o", "lerning_rate": 1})


def test_config_round_trips(scene_table, tmp_path):
    config = small(scene_table, tmp_path)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.replace(output_uri="elsewhere").config_hash() == config.config_hash()
    assert config.replace(lr=2e-4).config_hash() != config.config_hash()


@pytest.mark.integration
def test_checkpoints_on_s3_and_resume_from_there(scene_table, s3_bucket):
    from unsamv2.data import storage

    out = f"{s3_bucket}/runs/train"
    config = small(scene_table, "unused", output_uri=out, max_steps=2, checkpoint_every=1, val_images=0)
    first = train(config.replace(max_steps=1))
    assert first.checkpoint_uri == f"{out}/checkpoints/step-000001"
    assert storage.exists(f"{out}/checkpoints/step-000001/_SUCCESS") and storage.exists(f"{out}/summary.json")
    resumed = train(config, resume=True)
    straight = train(config.replace(output_uri=f"{s3_bucket}/runs/straight"))
    assert resumed.start_step == 1 and resumed.losses == straight.losses
    a = weights(load_trained_model(resumed.checkpoint_uri))
    b = weights(load_trained_model(straight.checkpoint_uri))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_refuses_a_model_config_changed_after_training(scene_table, tmp_path):
    """A checkpoint records its model config's sha256: pointing it at another architecture (or
    at code) by editing the YAML it names is refused."""
    from unsamv2.model.build import _config_text

    yaml_path = tmp_path / "model.yaml"
    yaml_path.write_text(_config_text("tiny"))
    result = train(small(scene_table, tmp_path / "run", model_config=str(yaml_path), max_steps=1,
                         trainable="full", val_images=0))
    load_trained_model(result.checkpoint_uri)  # unchanged: loads
    yaml_path.write_text(_config_text("tiny").replace("num_maskmem: 7", "num_maskmem: 6"))
    with pytest.raises(InputError, match="sha256 mismatch"):
        load_trained_model(result.checkpoint_uri)


@pytest.mark.slow
def test_the_default_adapts_the_shipped_base_and_keeps_it_bit_identical(scene_table, tmp_path):
    """No model fields: the paper's setting on the shipped base — only the granularity module
    trains, every base weight is unchanged after a real step."""
    from unsamv2.model.build import build_sam2
    from unsamv2.model.checkpoint import is_adapter_key

    config = TrainConfig(table_uri=scene_table["table"], output_uri=str(tmp_path / "run"), max_steps=1,
                         max_masks_per_image=2, correction_clicks=1, val_images=0)
    assert (config.model_config, config.trainable, config.batch_size) == ("base", "adapter", 4)
    result = train(config)
    model = load_trained_model(result.checkpoint_uri)
    base = build_sam2("base").state_dict()
    for key, value in model.state_dict().items():
        if key in base:
            assert torch.equal(value, base[key]), key
    assert result.trainable_parameters == sum(
        p.numel() for n, p in model.named_parameters() if is_adapter_key(n))
