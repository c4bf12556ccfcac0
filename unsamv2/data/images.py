"""The one image reader of the project (mining, training, segment, mine-image, video, evaluation).

It reads and decodes defensively: every failure becomes a reason, never an exception.
:func:`load_image` returns a :class:`LoadedImage` with either an RGB ``(H, W, 3) uint8`` array or an
error reason from :data:`unsamv2.data.schema.ERROR_REASONS` plus a one-sentence message. Guards:
zero bytes, not an image, truncated data, a decompression bomb (declared pixels checked from the
header before decoding), images smaller than ``min_side``. Modes are normalised to RGB: grayscale,
palette, RGBA (alpha dropped), CMYK, 16-bit (scaled to 8 bit); EXIF orientation is applied.
Transient storage failures are retried with backoff and then reported as ``unavailable``.

Commands that take one image from a user call :func:`read_image`, which raises
:class:`unsamv2.errors.InputError` with the reason in one sentence instead of returning it.
"""

from __future__ import annotations

import hashlib
import io
import time
import warnings
from dataclasses import dataclass

import numpy as np

from unsamv2.data import storage
from unsamv2.errors import InputError, StorageError, TransientStorageError

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP; anything larger is treated as a decompression bomb
DEFAULT_MIN_SIDE = 32


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image ``(H, W, 3) uint8`` or an error; ``content_hash`` is the sha256 of the bytes."""

    image: np.ndarray | None
    content_hash: str | None
    error: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rgb(self) -> np.ndarray:
        """``image`` of an ``ok`` result (what callers read after checking ``ok``); raises
        ``ValueError`` on an error result."""
        if self.image is None:
            raise ValueError(f"no image: {self.error} ({self.message})")
        return self.image


def _fail(reason: str, message: str, content_hash: str | None = None) -> LoadedImage:
    return LoadedImage(image=None, content_hash=content_hash, error=reason, message=message)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a transient read failure is retried: ``attempts`` in all, waiting
    ``base_seconds * 2**k`` (capped at ``max_seconds``) before retry ``k``."""

    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 8.0

    def delays(self) -> list[float]:
        return [min(self.max_seconds, self.base_seconds * 2**k) for k in range(max(0, self.attempts - 1))]


DEFAULT_RETRY = RetryPolicy()


def read_image_bytes(uri: str, retry: RetryPolicy = DEFAULT_RETRY) -> tuple[bytes | None, str | None, str | None]:
    """(bytes, None, None) or (None, reason, message) for a local path or object-store URI.

    Transient failures (:class:`unsamv2.errors.TransientStorageError`) are retried with backoff;
    if they persist the reason is ``unavailable`` (the caller must not treat the image as done).
    """
    delays = retry.delays()
    for attempt in range(len(delays) + 1):
        try:
            return storage.read_bytes(uri), None, None
        except TransientStorageError as exc:
            if attempt == len(delays):
                return None, "unavailable", f"{exc} (after {attempt + 1} attempts)"
            time.sleep(delays[attempt])
        except StorageError as exc:
            reason = "missing" if "does not exist" in str(exc) else "unreadable"
            return None, reason, str(exc)
        except OSError as exc:  # disk trouble that storage did not classify
            return None, "unreadable", f"{uri} could not be read ({exc})."
    raise AssertionError("unreachable")


def _to_rgb(img) -> np.ndarray:  # noqa: ANN001 - PIL image
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA").convert("RGB")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE) -> LoadedImage:
    """Decode image bytes into RGB with every guard of this module applied."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    digest = hashlib.sha256(data).hexdigest()
    if len(data) == 0:
        return _fail("empty", "the file has zero bytes.", digest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img: Image.Image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            return _fail("not_an_image", "the bytes are not in an image format Pillow can read.", digest)
        except Image.DecompressionBombError as exc:
            return _fail("too_large", f"the declared size is a decompression bomb ({exc}).", digest)
        except Exception as exc:  # noqa: BLE001 - a bad header must not stop the run
            return _fail("undecodable", f"the image header could not be parsed ({exc}).", digest)
        w, h = img.size
        if w * h > max_pixels:
            return _fail("too_large", f"declared size {w}x{h} exceeds the {max_pixels:,}-pixel limit.", digest)
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
        except Exception as exc:  # noqa: BLE001
            text = str(exc)
            reason = "truncated" if "truncat" in text or "broken data stream" in text else "undecodable"
            return _fail(reason, f"decoding failed ({text}).", digest)
    if min(rgb.shape[:2]) < min_side:
        return _fail("too_small", f"size {rgb.shape[1]}x{rgb.shape[0]} is below the {min_side}-pixel minimum side.", digest)
    return LoadedImage(image=np.ascontiguousarray(rgb), content_hash=digest)


def load_image(uri: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE,
               retry: RetryPolicy = DEFAULT_RETRY) -> LoadedImage:
    """Read and decode the image at ``uri`` (local or s3://); failures become a reason and message."""
    data, reason, message = read_image_bytes(uri, retry)
    if data is None:
        return _fail(reason or "unreadable", message or "unreadable")
    return decode_image(data, max_pixels=max_pixels, min_side=min_side)


def read_image(uri: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = 1,
               retry: RetryPolicy = DEFAULT_RETRY) -> LoadedImage:
    """Like :func:`load_image`, for a command given one image: returns an ``ok`` :class:`LoadedImage`
    (``image``, also typed as ``rgb``, is ``(H, W, 3) uint8`` RGB, EXIF-rotated) or raises :class:`InputError`."""
    loaded = load_image(uri, max_pixels=max_pixels, min_side=min_side, retry=retry)
    if not loaded.ok:
        message = (loaded.message or "").rstrip(".")
        raise InputError(f"{uri} cannot be used as an image ({loaded.error}: {message}); give a readable "
                         "PNG, JPEG, TIFF, BMP or WebP file.")
    return loaded
