import numpy as np
import pytest
from support.broken_images import write_broken_images

from unsamv2.data.images import decode_image, load_image


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    folder = tmp_path_factory.mktemp("broken")
    return folder, write_broken_images(folder)


def test_every_file_gets_the_expected_status(broken):
    folder, expected = broken
    for name, want in expected.items():
        got = load_image(str(folder / name))
        assert (got.error or "ok") == want, (name, got.message)
        if got.ok:
            assert got.image.dtype == np.uint8 and got.image.ndim == 3 and got.image.shape[2] == 3
        else:
            assert got.image is None and got.message


def test_mode_conversions(broken):
    folder, _ = broken
    assert load_image(str(folder / "exif_rotated.jpg")).image.shape == (128, 96, 3)  # rotated upright
    sixteen = load_image(str(folder / "sixteen_bit.png")).image
    assert sixteen.max() == 255 and sixteen.min() == 0  # scaled from 16 bit, not clipped
    gray = load_image(str(folder / "gray.png")).image
    assert (gray[..., 0] == gray[..., 1]).all()


def test_missing_and_content_hash(tmp_path, broken):
    folder, _ = broken
    missing = load_image(str(tmp_path / "nope.png"))
    assert missing.error == "missing" and missing.content_hash is None
    a = load_image(str(folder / "gray.png"))
    b = decode_image((folder / "gray.png").read_bytes())
    assert a.content_hash == b.content_hash and len(a.content_hash) == 64


def test_limits_are_configurable(broken):
    folder, _ = broken
    data = (folder / "gray.png").read_bytes()
    assert decode_image(data, max_pixels=100).error == "too_large"
    assert decode_image(data, min_side=200).error == "too_small"


def test_every_command_reads_images_the_same_way(broken, tmp_path):
    """segment / video (read_frame), mine-image and evaluation use this reader: EXIF rotation and
    16-bit are handled, and a bad file is one sentence, not a traceback."""
    from unsamv2.data.images import read_image
    from unsamv2.errors import InputError
    from unsamv2.model.video import read_frame

    folder, _ = broken
    assert read_frame(str(folder / "exif_rotated.jpg")).shape == (128, 96, 3)
    assert read_frame(str(folder / "sixteen_bit.png")).max() == 255
    for name, reason in [("truncated.jpg", "truncated"), ("huge_declared.png", "too_large"),
                         ("text_named.jpg", "not_an_image")]:
        with pytest.raises(InputError, match=f"cannot be used as an image \\({reason}") as info:
            read_image(str(folder / name))
        assert str(info.value).count(". ") == 0 and str(info.value).endswith("file.")
