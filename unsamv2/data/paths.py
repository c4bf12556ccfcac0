"""Joining names that come from input files (annotations, manifests, lists) under a root, safely.

A name read from a file a user supplied is data, not a path to trust: ``/etc/passwd``,
``../../x.png``, ``C:\\x.png``, ``a\\..\\..\\x`` or a name with a NUL must never reach outside the
root it is meant to live under. :func:`safe_join` is the one place that decides; it raises
:class:`~unsamv2.errors.InputError` with one sentence (what + how to fix) for any name that could.

Local roots are resolved (``os.path.realpath``) and the joined path's *folder* is resolved and
checked to stay inside the root, so a symlinked sub-folder pointing elsewhere is refused too. The
last component is not followed by default: a file symlink inside the root (what the converters'
``--symlink`` mode writes) is the root owner's choice, and writers must replace such a link rather
than write through it (``unsamv2.eval.convert.place_image`` does). ``follow_last=True`` resolves it
as well, for callers that will write *through* the returned path.
"""

from __future__ import annotations

import os
import posixpath
import re

from unsamv2.errors import InputError

_DRIVE = re.compile(r"^[A-Za-z]:")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a safe relative name (a short phrase), or None when it is one."""
    if not isinstance(name, str) or not name:
        return "is empty or not a string"
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or _DRIVE.match(name) or _SCHEME.match(name):
        return "is absolute"
    parts = name.split("/")
    if ".." in parts:
        return "has a '..' component"
    if not [p for p in parts if p not in ("", ".")]:
        return "names no file"
    return None


def relative_parts(name: str, *, what: str) -> list[str]:
    """The components of a safe relative ``name`` ('.' and empty ones dropped); raises InputError."""
    problem = name_problem(name)
    if problem is not None:
        raise InputError(f"{what} {name!r} {problem}; give a path relative to its root, using '/' and no '..'.")
    return [p for p in name.split("/") if p not in ("", ".")]


def is_inside(root: str, path: str) -> bool:
    """Whether local ``path`` is ``root`` or lies under it (both taken as given; resolve first)."""
    root, path = os.path.abspath(root), os.path.abspath(path)
    return os.path.commonpath([root, path]) == root


def safe_join(root: str, name: str, *, what: str, follow_last: bool = False) -> str:
    """``root`` joined with the relative ``name`` (local folder or ``s3://`` prefix), checked.

    Refuses absolute names, drive letters, URI schemes, backslashes, ``..`` components and NUL;
    for a local root also any result whose (resolved) folder leaves the resolved root, and with
    ``follow_last`` a final symlink that points outside it. ``what`` names the value in the error
    ("image file_name of image 7 in a.json"). Raises :class:`InputError`.
    """
    parts = relative_parts(name, what=what)
    if _SCHEME.match(root):
        return posixpath.join(root.rstrip("/"), *parts)
    real_root = os.path.realpath(root)
    joined = os.path.join(real_root, *parts)
    check = os.path.realpath(joined) if follow_last else os.path.join(os.path.realpath(os.path.dirname(joined)),
                                                                       parts[-1])
    if not is_inside(real_root, check):
        raise InputError(f"{what} {name!r} leads outside {root} through a symlink; "
                         "remove the symlink or move the file inside the root.")
    return os.path.join(root, *parts)
