"""Private folders: created 0700 whatever the umask; reused only when they are a real folder of this
user that no one else can write, else a one-sentence error that says how to fix it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from unsamv2.backends.private_dirs import check_private_dir, ensure_private_dir, private_runtime_dir
from unsamv2.errors import StorageError


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_folder_is_0700_even_with_an_open_umask(tmp_path):
    old = os.umask(0)
    try:
        folder = ensure_private_dir(tmp_path / "a" / "state", "the state folder")
    finally:
        os.umask(old)
    assert folder.is_dir() and _mode(folder) == 0o700
    assert ensure_private_dir(folder) == folder  # reused as it is


def test_a_folder_others_can_write_is_refused_with_the_fix(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o777)
    with pytest.raises(StorageError, match=r"the state folder .*shared can be written by other users \(mode 777\); "
                                           r"run `chmod 700 .*shared`"):
        ensure_private_dir(folder, "the state folder")
    os.chmod(folder, 0o755)  # readable, not writable by others: reused
    assert ensure_private_dir(folder) == folder


def test_a_link_or_a_file_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(target, target_is_directory=True)
    with pytest.raises(StorageError, match="is not a folder but a link or a file; remove it"):
        ensure_private_dir(tmp_path / "link", "the state folder")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="not a folder"):
        check_private_dir(tmp_path / "file", "the state folder")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give a folder away")
def test_a_folder_of_another_user_is_refused(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 54321, -1)
    with pytest.raises(StorageError, match=r"belongs to another user \(uid 54321, you are 0\); remove it"):
        ensure_private_dir(folder, "unsamv2's temporary folder")


def test_the_runtime_folder_is_per_user_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    folder = private_runtime_dir()
    assert folder == tmp_path / f"unsamv2-{os.getuid()}" and _mode(folder) == 0o700
    os.chmod(folder, 0o733)  # what a planted, world-writable folder would look like
    with pytest.raises(StorageError, match="unsamv2's temporary folder .* can be written by other users"):
        private_runtime_dir()
