"""safe_join: names from input files never lead outside their root."""

import os

import pytest

from unsamv2.data.paths import name_problem, safe_join
from unsamv2.errors import InputError

BAD = ["/etc/passwd", "../x.png", "a/../../x.png", "a/..", "C:/x.png", "c:x.png", "a\\..\\..\\x.png",
       "\\\\server\\share\\x", "s3://other/x.png", "file:///etc/passwd", "a\x00.png", "", ".", 7]


@pytest.mark.parametrize("name", BAD)
def test_escaping_names_are_refused_with_one_sentence(tmp_path, name):
    with pytest.raises(InputError) as err:
        safe_join(str(tmp_path), name, what="file_name of image 3")
    msg = str(err.value)
    assert msg.startswith("file_name of image 3") and msg.count(";") == 1 and "relative" in msg
    with pytest.raises(InputError):
        safe_join("s3://bucket/root", name, what="key")


def test_good_names_join_locally_and_on_s3(tmp_path):
    assert safe_join(str(tmp_path), "images/./a.png", what="x") == os.path.join(str(tmp_path), "images", "a.png")
    assert safe_join("s3://b/root/", "images/a..b.png", what="x") == "s3://b/root/images/a..b.png"
    assert name_problem("..hidden/x..png") is None


def test_a_symlinked_folder_leading_outside_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InputError, match="through a symlink"):
        safe_join(str(root), "link/f.png", what="x")


def test_a_final_symlink_is_only_followed_when_asked(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "src.png").write_bytes(b"x")
    (root / "f.png").symlink_to(tmp_path / "src.png")
    assert safe_join(str(root), "f.png", what="x") == str(root / "f.png")
    with pytest.raises(InputError, match="through a symlink"):
        safe_join(str(root), "f.png", what="x", follow_last=True)


def test_a_symlinked_root_is_fine(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert safe_join(str(tmp_path / "alias"), "a/b.png", what="x") == str(tmp_path / "alias" / "a" / "b.png")
