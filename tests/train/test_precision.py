"""Mixed precision: the bf16 autocast path of the recipe (on CPU here; on CUDA where there is one)."""

import math

import pytest
import torch

from unsamv2.train import TrainConfig, train


def _config(scene_table, out, **changes):
    base = dict(table_uri=scene_table["table"], output_uri=str(out), max_steps=2, batch_size=1,
                max_masks_per_image=2, correction_clicks=1, checkpoint_every=2, val_images=0, seed=3)
    return TrainConfig(**{**base, **changes})


def _adapter_moved(result, reference):
    from safetensors.torch import load_file

    trained = load_file(result.adapter_uri)
    return any(not torch.equal(trained[k].float(), reference[k].float()) for k in trained)


def _initial_adapter():
    from unsamv2.model import build_model
    from unsamv2.model.adapter import adapter_state_dict

    return adapter_state_dict(build_model("tiny"))


def test_bf16_autocast_step_on_cpu(scene_table, tmp_path):
    """The same autocast code path CUDA runs by default, forced on CPU: finite losses, the adapter
    moves and stays float32 (autocast changes compute, not parameter dtypes)."""
    result = train(_config(scene_table, tmp_path, precision="bf16", device="cpu"))
    assert result.steps == 2 and all(math.isfinite(v) for v in result.losses)
    assert _adapter_moved(result, _initial_adapter())
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(result.adapter_uri).values()} == {torch.float32}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_adapter_training_on_cuda(scene_table, tmp_path):
    """On CUDA the default precision is bf16 autocast: a short run trains and resumes on the GPU."""
    result = train(_config(scene_table, tmp_path, device="cuda"))
    assert result.steps == 2 and all(math.isfinite(v) for v in result.losses)
    assert _adapter_moved(result, _initial_adapter())
    resumed = train(_config(scene_table, tmp_path, device="cuda", max_steps=3), resume=True)
    assert resumed.start_step == 2 and resumed.steps == 3
