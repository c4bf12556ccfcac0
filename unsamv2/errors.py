"""User-facing errors.

Every error a user can cause (bad path, bad config, bad value) is raised as :class:`UnSAMv2Error`
(or a subclass) with one sentence that says what is wrong and how to fix it. The CLI prints the
message without a traceback and exits with status 2; library callers can catch the class.
"""

from __future__ import annotations


class UnSAMv2Error(Exception):
    """An error caused by the user's input, with a one-sentence message (what + how to fix)."""


class InputError(UnSAMv2Error, ValueError):
    """A value, file or path given by the user is invalid."""


class SchemaError(UnSAMv2Error):
    """A table or file does not follow the expected data contract (e.g. unknown schema version)."""


class StorageError(UnSAMv2Error, OSError):
    """A local path or object-store URI cannot be read or written."""
