"""Real photographs that ship inside scikit-image: sample inputs that need no download.

| name | content | source and licence (as stated by scikit-image) |
|---|---|---|
| astronaut | Eileen Collins, portrait | NASA, public domain |
| coffee | a cup of coffee | Rachel Michetti, CC0 |
| chelsea | a cat | Stefan van der Walt, CC0 |
| rocket | a Falcon 9 on its launch pad | SpaceX, public domain |
| motorcycle_left | a motorcycle in a studio | Middlebury 2014 stereo benchmark (left view) |
"""

from __future__ import annotations

import io

import numpy as np

from unsamv2.data import storage
from unsamv2.errors import InputError

SAMPLE_PHOTO_NAMES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")


def _load(name: str) -> np.ndarray:
    from skimage import data

    if name == "motorcycle_left":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


def sample_photos(names: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """The bundled photos by name, each (H, W, 3) uint8 RGB; all of them when ``names`` is None."""
    chosen = SAMPLE_PHOTO_NAMES if names is None else tuple(names)
    unknown = [n for n in chosen if n not in SAMPLE_PHOTO_NAMES]
    if unknown:
        raise InputError(f"unknown sample photo(s) {unknown}; choose from {list(SAMPLE_PHOTO_NAMES)}.")
    photos = {}
    for name in chosen:
        image = np.asarray(_load(name))
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        photos[name] = np.ascontiguousarray(image[..., :3].astype(np.uint8, copy=False))
    return photos


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def write_sample_photos(out_dir: str, quality: int = 92) -> list[str]:
    """Write every sample photo as ``out_dir/<name>.jpg`` (local folder or s3:// prefix); returns their URIs."""
    storage.makedirs(out_dir)
    uris = []
    for name, image in sample_photos().items():
        uri = storage.join(out_dir, f"{name}.jpg")
        storage.write_bytes(uri, encode_jpeg(image, quality))
        uris.append(uri)
    return uris
