"""The ``unsamv2`` command line.

Each command lives in its own module under ``unsamv2.cli`` and exposes ``register(subparsers)``;
heavy imports happen inside the command's handler so that ``unsamv2 --help`` stays fast.
User errors (:class:`unsamv2.errors.UnSAMv2Error`) are printed as one line, without a traceback,
and the process exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order is the order of ``unsamv2 --help``.
_COMMAND_MODULES: tuple[str, ...] = (
    "unsamv2.cli.scenes",
    "unsamv2.cli.mine",
    "unsamv2.cli.table",
    "unsamv2.cli.info",
    "unsamv2.cli.segment",
    "unsamv2.cli.mine_image",
    "unsamv2.cli.train",
    "unsamv2.cli.eval",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every command registered."""
    from unsamv2 import __version__

    parser = argparse.ArgumentParser(
        prog="unsamv2",
        description="Segment anything at any granularity: mine, train, evaluate and use UnSAMv2.",
    )
    parser.add_argument("--version", action="version", version=f"unsamv2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``unsamv2`` console script; returns the process exit status."""
    from unsamv2.errors import UnSAMv2Error

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except UnSAMv2Error as exc:
        print(f"unsamv2: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"unsamv2: error: {exc.strerror or exc}:{where}; check the path and its permissions.",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unsamv2: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
