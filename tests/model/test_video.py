"""Video propagation at a granularity on a few tiny frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unsamv2.errors import InputError
from unsamv2.model import UnSAMv2VideoPredictor


def moving_square(count: int = 4) -> list[np.ndarray]:
    frames = []
    for t in range(count):
        frame = np.full((96, 128, 3), 40, dtype=np.uint8)
        frame[20:70, 20 + 8 * t:70 + 8 * t] = (210, 60, 50)
        frames.append(frame)
    return frames


@pytest.fixture
def spy(tiny_model):
    """Records every granularity the prompt encoder appends while SAM-2's video code runs."""
    seen = []
    encoder = tiny_model.sam_prompt_encoder

    def hook(_module, inputs, kwargs, output):
        g = kwargs.get("granularity", encoder._active_granularity)
        seen.append((None if g is None else float(g.reshape(-1)[0]), output[0].shape[1]))

    handle = encoder.register_forward_hook(hook, with_kwargs=True)
    yield seen
    handle.remove()


def test_propagates_through_every_frame_with_g_fed_on_each(tiny_model, spy):
    video = UnSAMv2VideoPredictor(tiny_model)
    out = list(video.propagate(moving_square(), [[45, 45]], [1], 0.3, frame_index=1))
    assert [i for i, _ in out] == [1, 2, 3, 0]  # forward from the click, then backwards
    assert all(m.shape == (96, 128) and m.dtype == bool for _, m in out)
    # one prompt encoding per processed frame (clicked frame + 3 propagated), all with g = 0.3
    assert len(spy) == 4 and all(g == pytest.approx(0.3) for g, _ in spy)
    assert spy[0][1] == 3  # click + padding point + granularity token
    assert all(n == 3 for _, n in spy[1:])  # SAM-2's empty point + padding + granularity token


def test_granularity_changes_the_propagated_masks(fresh_tiny, randomize_adapter):
    randomize_adapter(fresh_tiny, seed=5)
    video = UnSAMv2VideoPredictor(fresh_tiny, mask_threshold=0.0)
    frames = moving_square(3)
    with torch.no_grad():
        a = dict(video.propagate(frames, [[45, 45]], [1], 0.1))
        b = dict(video.propagate(frames, [[45, 45]], [1], 1.0))
        again = dict(video.propagate(frames, [[45, 45]], [1], 0.1))
    assert any((a[i] != b[i]).any() for i in a)
    assert all((a[i] == again[i]).all() for i in a)


def test_frames_from_a_folder_in_natural_order(tiny_model, tmp_path):
    from PIL import Image

    frames = moving_square(3)
    for i, name in enumerate(["frame_2.png", "frame_10.png", "frame_1.png"]):
        Image.fromarray(frames[[1, 2, 0][i]]).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a frame")
    video = UnSAMv2VideoPredictor(tiny_model)
    out = dict(video.propagate(str(tmp_path), [[45, 45]], [1], 0.5))
    direct = dict(video.propagate(frames, [[45, 45]], [1], 0.5))
    assert sorted(out) == [0, 1, 2]
    assert all((out[i] == direct[i]).all() for i in out)


def test_bad_video_inputs_are_clear_errors(tiny_model, tmp_path):
    video = UnSAMv2VideoPredictor(tiny_model)
    frames = moving_square(2)
    with pytest.raises(InputError, match="outside the 128x96 frame"):
        list(video.propagate(frames, [[200, 10]], [1], 0.5))
    with pytest.raises(InputError, match="outside the 128x96 frame"):
        list(video.propagate(frames, [[float("nan"), 10]], [1], 0.5))
    with pytest.raises(InputError, match="one granularity"):
        list(video.propagate(frames, [[20, 10]], [1], [0.2, 0.4]))
    with pytest.raises(InputError, match="granularity"):
        list(video.propagate(frames, [[20, 10]], [1], 2.0))
    with pytest.raises(InputError, match="frame index 5"):
        list(video.propagate(frames, [[20, 10]], [1], 0.5, frame_index=5))
    with pytest.raises(InputError, match="no frames"):
        list(video.propagate(str(tmp_path), [[20, 10]], [1], 0.5))
