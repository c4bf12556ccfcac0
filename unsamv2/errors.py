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


class TransientStorageError(StorageError):
    """A read or write failed for a reason that may pass: throttling, a 5xx answer, access denied or
    expired credentials (403), a refused or reset connection, a timeout. Retry, or rerun later."""


class IncompleteRunError(UnSAMv2Error):
    """A run finished but left work undone that a rerun will pick up (e.g. images that could not be
    read because storage was unavailable); its message says how much and what to do."""


class RejectedImage(UnSAMv2Error):
    """One image of a batch cannot be processed for a known reason (``reason``: a mask-table error
    code such as ``no_candidates``); the pipeline records an error row, the run goes on."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
