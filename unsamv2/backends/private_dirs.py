"""Private folders on a shared machine: created mode 0700, and checked before they are reused.

A folder another user owns, a symbolic link, or a folder others can write to could let that user
read secrets, plant files or redirect writes, so an existing folder is reused only when it is a real
folder owned by the current user that neither group nor others can write; anything else is refused
with a :class:`~unsamv2.errors.StorageError` that says what is wrong and how to fix it.

:func:`private_runtime_dir` is the per-user folder under the system temporary folder
(``$TMPDIR`` or ``/tmp``) for short-lived state such as a local Ray instance's session files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from unsamv2.errors import StorageError

PRIVATE_MODE = 0o700


def _uid() -> int:
    """The current user's id (POSIX only; -1 where there is none)."""
    return os.getuid() if hasattr(os, "getuid") else -1


def check_private_dir(path: Path, what: str) -> None:
    """Raise :class:`StorageError` unless ``path`` is a real folder of this user no one else can write."""
    try:
        st = os.lstat(path)
    except FileNotFoundError as exc:
        raise StorageError(f"{what} {path} does not exist; create it or choose another folder.") from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"{what} {path} is not a folder but a link or a file; remove it or choose another folder.")
    if _uid() >= 0 and st.st_uid != _uid():
        raise StorageError(f"{what} {path} belongs to another user (uid {st.st_uid}, you are {_uid()}); "
                           "remove it or choose another folder.")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StorageError(f"{what} {path} can be written by other users (mode {stat.S_IMODE(st.st_mode):o}); "
                           f"run `chmod 700 {path}` or choose another folder.")


def ensure_private_dir(path: Path | str, what: str = "the folder") -> Path:
    """Create ``path`` with mode 0700 (parents as needed), or check an existing one before reuse.

    Returns ``path``. Raises :class:`StorageError` when an existing folder fails
    :func:`check_private_dir`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_MODE)
    except FileExistsError:
        check_private_dir(path, what)
        return path
    os.chmod(path, PRIVATE_MODE)  # mkdir's mode is filtered by the umask; make it exactly 0700
    return path


def private_runtime_dir(base: Path | str | None = None) -> Path:
    """``<base>/unsamv2-<uid>`` (base: ``$TMPDIR`` or ``/tmp``), created 0700 or checked before reuse."""
    root = Path(base) if base is not None else Path(os.environ.get("TMPDIR") or "/tmp")
    return ensure_private_dir(root / f"unsamv2-{_uid() if _uid() >= 0 else 'user'}", "unsamv2's temporary folder")
