"""Video at a granularity (docs/architecture.md#inference): click an object on one frame, propagate it.

SAM-2's memory pipeline runs unchanged (``add_new_points_or_box`` then ``propagate_in_video``);
the granularity token is fed on the clicked frame and on every propagated frame, and the
granularity token's output is the object pointer (see :mod:`unsamv2.model.decoder`).

    video = UnSAMv2VideoPredictor(model)
    for frame_index, mask in video.propagate(frames, [[x, y]], [1], granularity=0.3):
        ...   # mask (H, W) bool
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from unsamv2.data import storage
from unsamv2.errors import InputError
from unsamv2.model.predictor import IMAGE_MEAN, IMAGE_STD, as_granularities

if TYPE_CHECKING:
    from unsamv2.model.network import UnSAMv2Model

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_frames(folder: str) -> list[str]:
    """Image files of a folder (local or s3://), in natural order (frame2 before frame10)."""
    paths = [p for p in storage.iter_files(folder) if p.lower().endswith(FRAME_SUFFIXES)]
    if not paths:
        raise InputError(f"no frames ({', '.join(FRAME_SUFFIXES)}) found in {folder}; give a "
                         "folder of video frames.")

    def key(path: str) -> list[Any]:
        name = path.rsplit("/", 1)[-1]
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    return sorted(paths, key=key)


def read_frame(uri: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (local or s3://), read by the project's one image reader
    (:func:`unsamv2.data.images.read_image`: EXIF rotation, 16-bit, CMYK, size limits); a bad file
    raises :class:`InputError`."""
    from unsamv2.data.images import read_image

    return read_image(uri).rgb


class _Frames(Sequence):
    """Frames normalised for SAM-2 ((3, S, S) float), loaded lazily on indexing.

    Same preprocessing as SAM-2's video loader: PIL resize to S x S, /255, ImageNet mean/std.
    """

    def __init__(self, frames: Sequence[np.ndarray] | Sequence[str], size: int) -> None:
        self._frames = frames
        self._size = size
        self._mean = torch.tensor(IMAGE_MEAN)[:, None, None]
        self._std = torch.tensor(IMAGE_STD)[:, None, None]

    def __len__(self) -> int:
        return len(self._frames)

    def raw(self, index: int) -> np.ndarray:
        frame = self._frames[index]
        frame = read_frame(frame) if isinstance(frame, str) else np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"frame {index} must be (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}.")
        return frame

    def __getitem__(self, index: int) -> torch.Tensor:  # type: ignore[override]
        from PIL import Image

        resized = Image.fromarray(self.raw(index)).resize((self._size, self._size))
        tensor = torch.from_numpy(np.array(resized)).permute(2, 0, 1).float() / 255.0
        return (tensor - self._mean) / self._std


class UnSAMv2VideoPredictor:
    """Propagate one clicked object through a sequence of frames at a granularity.

    mask_threshold: logits above it are foreground (-1.0, as the reference).
    """

    def __init__(self, model: UnSAMv2Model, mask_threshold: float = -1.0) -> None:
        self.model = model
        self.mask_threshold = float(mask_threshold)

    def propagate(self, frames: str | Sequence[np.ndarray] | Sequence[str],
                  point_coords: Any, point_labels: Any, granularity: float,
                  frame_index: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame index, mask (H, W) bool) for every frame: the clicked frame and the ones
        after it in order, then the frames before it in order (tracked backwards).

        frames: a folder (local or s3://) of image files, a list of paths, or a list of
        (H, W, 3) uint8 RGB arrays, all of the same size. point_coords (N, 2) (x, y) pixels and
        point_labels (N,) 1/0 are clicks on frame ``frame_index``; granularity: one g in [0, 1].
        Frames before the clicked one are tracked backwards after the forward pass. Masks have
        the clicked frame's size (other frames are assumed to share it).
        """
        sequence = _Frames(list_frames(frames) if isinstance(frames, str) else frames,
                           self.model.image_size)
        if not 0 <= frame_index < len(sequence):
            raise InputError(f"frame index {frame_index} is outside 0..{len(sequence) - 1}.")
        first = sequence.raw(frame_index)
        height, width = first.shape[:2]
        coords, labels = _check_clicks(point_coords, point_labels, width, height)
        gs = as_granularities(granularity)
        if gs.size != 1:
            raise InputError("video propagation takes one granularity value; run once per g.")
        yield from self._run(sequence, frame_index, coords, labels, float(gs[0]), (height, width))

    def _run(self, sequence: _Frames, frame_index: int, coords: np.ndarray, labels: np.ndarray,
             g: float, size_hw: tuple[int, int]) -> Iterator[tuple[int, np.ndarray]]:
        model = self.model
        state = model.init_video_state(sequence, size_hw[0], size_hw[1])
        results: dict[int, np.ndarray] = {}
        with model.granularity_prompt(g), torch.inference_mode():
            model.add_new_points_or_box(state, frame_idx=frame_index, obj_id=1, points=coords,
                                        labels=labels)
            for reverse in (False, True):
                if reverse and frame_index == 0:
                    break
                for index, _, logits in model.propagate_in_video(
                        state, start_frame_idx=frame_index, reverse=reverse):
                    mask = (logits[0, 0] > self.mask_threshold).cpu().numpy()
                    if not reverse:
                        yield index, mask
                    else:
                        results[index] = mask
        for index in sorted(i for i in results if i < frame_index):
            yield index, results[index]


def _check_clicks(point_coords: Any, point_labels: Any, width: int,
                  height: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.asarray(point_coords, dtype=np.float32)
    labels = np.asarray(point_labels)
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] == 0 or labels.shape != coords.shape[:1]:
        raise InputError(f"clicks must be point_coords (N, 2) and point_labels (N,), got "
                         f"{coords.shape} and {labels.shape}.")
    if not np.isin(labels, (0, 1)).all():
        raise InputError(f"point labels must be 1 (positive) or 0 (negative), got {labels.tolist()}.")
    if (~np.isfinite(coords) | (coords < 0) | (coords >= np.array([width, height]))).any():
        raise InputError(f"a click is outside the {width}x{height} frame; use 0 <= x < {width}, "
                         f"0 <= y < {height}.")
    return coords, labels.astype(np.int32)
