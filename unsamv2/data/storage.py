"""Local paths and object-store URIs (``s3://``) behind one small API, via fsspec.

S3 settings come from the environment the usual way (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``/``AWS_DEFAULT_REGION``) plus ``AWS_ENDPOINT_URL`` (or ``UNSAMV2_S3_ENDPOINT_URL``)
for S3-compatible stores such as MinIO or a moto server. Nothing secret is ever logged.

Errors become :class:`unsamv2.errors.StorageError` with one sentence (what failed, how to fix it).
"""

from __future__ import annotations

import errno
import os
import posixpath
import uuid
from collections.abc import Iterator
from typing import IO, Any

import fsspec

from unsamv2.errors import StorageError, TransientStorageError

REMOTE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "memory")
_TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests", "RequestTimeout",
    "RequestTimeoutException", "InternalError", "ServiceUnavailable", "ExpiredToken", "ExpiredTokenException",
    "TokenRefreshRequired", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "RequestTimeTooSkewed",
})
_TRANSIENT_ERRNOS = frozenset({errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED,
                               errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EAGAIN})
_TRANSIENT_TYPE_NAMES = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "NoCredentialsError", "CredentialRetrievalError", "ClientConnectorError", "ServerDisconnectedError",
    "ClientPayloadError", "ClientOSError", "ServerTimeoutError",
})


def is_remote(uri: str) -> bool:
    """True for object-store URIs (``s3://...``), false for local paths and ``file://``."""
    return "://" in uri and uri.split("://", 1)[0] not in ("file", "local")


def s3_endpoint_url() -> str | None:
    """The S3 endpoint override from the environment, or None for AWS itself."""
    return os.environ.get("UNSAMV2_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None


def storage_options(uri: str) -> dict[str, Any]:
    """fsspec options for ``uri``: the S3 endpoint override when one is configured."""
    if uri.startswith(("s3://", "s3a://")):
        endpoint = s3_endpoint_url()
        opts: dict[str, Any] = {}
        if endpoint:
            opts["endpoint_url"] = endpoint
        return opts
    return {}


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``uri`` and the path inside it (no protocol for local paths)."""
    try:
        fs, path = fsspec.core.url_to_fs(uri, **storage_options(uri))
    except ImportError as exc:
        raise StorageError(
            f"cannot open {uri}: the filesystem for it is not installed ({exc}); "
            "install the extra with: pip install 'unsamv2[s3]'."
        ) from exc
    except ValueError as exc:
        raise StorageError(f"cannot open {uri}: {exc}; give a local path or an s3:// URI.") from exc
    return fs, path


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a local path or URI with '/'."""
    if is_remote(uri):
        return posixpath.join(uri.rstrip("/"), *parts)
    return os.path.join(uri, *parts)


def exists(uri: str) -> bool:
    """Whether a file or folder exists at ``uri``."""
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


def _http_status(exc: BaseException) -> tuple[int | None, str | None]:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None, None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return (int(status) if status is not None else None), response.get("Error", {}).get("Code")


def is_transient(exc: BaseException, *, remote: bool = True) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a failure that may pass on retry.

    Transient: throttling (429, SlowDown), 5xx answers, access denied / expired or missing
    credentials on an object store (403: fixed by new credentials, then a rerun), connection
    errors and timeouts. Permanent: missing keys, folders given as files, local permission errors,
    anything else. ``remote`` says whether the failing URI was an object store.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        status, code = _http_status(cur)
        if code in _TRANSIENT_CODES or (status is not None and (status in (403, 408, 429) or status >= 500)):
            return True
        if isinstance(cur, (TimeoutError, ConnectionError)) or type(cur).__name__ in _TRANSIENT_TYPE_NAMES:
            return True
        if remote and isinstance(cur, PermissionError):
            return True
        if isinstance(cur, OSError) and cur.errno in _TRANSIENT_ERRNOS:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def read_bytes(uri: str) -> bytes:
    """The whole content of the file at ``uri``.

    Raises :class:`StorageError` (missing, a folder, unreadable) or its subclass
    :class:`TransientStorageError` when the failure may pass (see :func:`is_transient`).
    """
    fs, path = filesystem(uri)
    try:
        with fs.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as exc:
        raise StorageError(f"{uri} does not exist; check the path or URI.") from exc
    except IsADirectoryError as exc:
        raise StorageError(f"{uri} is a folder, not a file; give the path of a file.") from exc
    except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
        if is_transient(exc, remote=is_remote(uri)):
            raise TransientStorageError(
                f"{uri} could not be read for now ({type(exc).__name__}: {exc}); check the credentials and the "
                "store's availability, then rerun.") from exc
        if isinstance(exc, PermissionError):
            raise StorageError(f"{uri} cannot be read (permission denied); fix its permissions.") from exc
        if isinstance(exc, OSError):
            raise StorageError(f"{uri} could not be read ({exc}); check the file or the store.") from exc
        raise


def read_text(uri: str) -> str:
    """The content of a UTF-8 text file at ``uri``."""
    return read_bytes(uri).decode("utf-8")


def makedirs(uri: str) -> None:
    """Create the folder ``uri`` (no-op on object stores, which have no folders)."""
    if is_remote(uri):
        return
    try:
        os.makedirs(uri, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder {uri} ({exc.strerror}); choose a writable location.") from exc


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` atomically: readers see the old content or the new, never a part.

    Local files are written to a temporary sibling and renamed (``os.replace``); object-store PUTs
    are atomic per object already.
    """
    fs, path = filesystem(uri)
    try:
        if is_remote(uri):
            fs.pipe_file(path, data)
            return
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (PermissionError, IsADirectoryError, NotADirectoryError, OSError) as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot write {uri} ({exc}); choose a writable output location.") from exc


def write_text(uri: str, text: str) -> None:
    """Write UTF-8 text to ``uri`` atomically (see :func:`write_bytes`)."""
    write_bytes(uri, text.encode("utf-8"))


def open_uri(uri: str, mode: str = "rb") -> IO[Any]:
    """Open ``uri`` like ``open`` (binary or text); the caller closes it."""
    fs, path = filesystem(uri)
    try:
        return fs.open(path, mode)
    except FileNotFoundError as exc:
        raise StorageError(f"{uri} does not exist; check the path or URI.") from exc


def glob(uri_pattern: str) -> list[str]:
    """Sorted URIs (same form as the pattern: local path or ``proto://``) matching a glob pattern."""
    fs, path = filesystem(uri_pattern)
    found = sorted(fs.glob(path))
    if is_remote(uri_pattern):
        proto = uri_pattern.split("://", 1)[0]
        return [f"{proto}://{p}" for p in found]
    return found


def iter_files(uri: str) -> Iterator[str]:
    """Every file under the folder/prefix ``uri``, recursively, in sorted order, streamed per folder."""
    fs, root = filesystem(uri)
    proto = uri.split("://", 1)[0] if is_remote(uri) else None
    for dirpath, _dirs, files in fs.walk(root, topdown=True):
        _dirs.sort()
        for name in sorted(files):
            full = posixpath.join(dirpath, name) if proto else os.path.join(dirpath, name)
            yield f"{proto}://{full}" if proto else full


def delete(uri: str) -> None:
    """Delete the file at ``uri`` if it exists."""
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm_file(path)
