"""A folder of good and deliberately broken image files, for the ingestion tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# file name -> expected status ("ok") or error reason
EXPECTED = {
    "zero_bytes.jpg": "empty",
    "truncated.jpg": "truncated",
    "text_named.jpg": "not_an_image",
    "huge_declared.png": "too_large",
    "one_pixel.png": "too_small",
    "gray.png": "ok",
    "rgba.png": "ok",
    "sixteen_bit.png": "ok",
    "cmyk.jpg": "ok",
    "exif_rotated.jpg": "ok",
}


def _gradient(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)


def _png_with_declared_size(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def write_broken_images(folder: Path) -> dict[str, str]:
    """Write every file of :data:`EXPECTED` into ``folder``; returns EXPECTED."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = _gradient(96, 128)
    (folder / "zero_bytes.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "text_named.jpg").write_text("this is not a picture\n")
    (folder / "huge_declared.png").write_bytes(_png_with_declared_size(60_000, 60_000))
    Image.fromarray(rgb[:1, :1]).save(folder / "one_pixel.png")
    Image.fromarray(rgb[:, :, 0]).save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(folder / "sixteen_bit.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise on display
    Image.fromarray(rgb).save(folder / "exif_rotated.jpg", "JPEG", exif=exif)
    return dict(EXPECTED)
