"""``unsamv2 train``: progress, final summary, resume, config files, one-sentence errors."""

import json
import os

import pytest

from unsamv2.cli import main

FAST = ["--steps", "2", "--batch-size", "1", "--max-masks", "2", "--clicks", "1", "--val-images", "1",
        "--checkpoint-every", "1"]


def test_train_prints_a_summary_and_resumes(scene_table, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", scene_table["table"], out, *FAST]) == 0
    captured = capsys.readouterr()
    assert "trained steps 0..2" in captured.out and "checkpoint" in captured.out
    assert "train:" in captured.err  # the tqdm bar
    assert os.path.exists(os.path.join(out, "checkpoints", "step-000002", "adapter.safetensors"))
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["steps"] == 2 and len(summary["losses"]) == 2
    assert main(["train", scene_table["table"], out, *FAST, "--resume"]) == 0
    assert "nothing to train: already at step 2" in capsys.readouterr().out


def test_config_file_with_flag_overrides(scene_table, tmp_path, capsys):
    from unsamv2.train import TrainConfig

    config = TrainConfig(table_uri=scene_table["table"], output_uri=str(tmp_path / "a"), max_steps=5,
                         batch_size=1, max_masks_per_image=2, correction_clicks=1, val_images=0, trainable="full")
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    assert main(["train", "--config-file", str(path), "--steps", "1", "--no-augment"]) == 0
    meta = json.load(open(tmp_path / "a" / "checkpoints" / "step-000001" / "meta.json"))
    assert meta["config"]["max_steps"] == 1 and meta["config"]["trainable"] == "full"
    assert meta["config"]["augment"]["enabled"] is False
    assert "weights" in capsys.readouterr().out  # full mode writes model.safetensors


@pytest.mark.parametrize(("args", "fragment"), [
    (["--steps", "0"], "max_steps must be an integer >= 1"),
    (["--config", "sam2.1_hiera_s"], "needs base_checkpoint"),
    (["--model-config", "sam2.1_hiera_s"], "needs base_checkpoint"),
    (["--workers", "0", "--backend", "ray"], "workers must be at least 1"),
])
def test_bad_values_are_one_sentence(scene_table, tmp_path, capsys, args, fragment):
    assert main(["train", scene_table["table"], str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_a_choice_outside_the_fields_literal_is_refused_by_argparse(scene_table, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", scene_table["table"], str(tmp_path / "x"), "--trainable", "lora"])
    assert exit_.value.code == 2 and "argument --trainable: invalid choice: 'lora'" in capsys.readouterr().err


def test_missing_table_is_one_sentence(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope"), str(tmp_path / "out"), "--no-split"]) == 2
    assert "no complete mask-table shards" in capsys.readouterr().err
