"""Shared command-line plumbing of the converters in this folder (run them as scripts)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from unsamv2.errors import UnSAMv2Error


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with ``src``, ``out``, ``--symlink`` and ``--max-images``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="root folder of the local copy of the dataset (layout above)")
    p.add_argument("out", help="output folder: annotations.json + images/")
    p.add_argument("--symlink", action="store_true", help="symlink the images instead of copying them")
    p.add_argument("--max-images", type=int, default=None, help="convert only the first N images")
    return p


def run(main: Callable[[argparse.Namespace], object], p: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse, convert, print the summary; user errors become one line and exit status 2."""
    args = p.parse_args(argv)
    args.mode = "symlink" if args.symlink else "copy"
    try:
        builder = main(args)
    except UnSAMv2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/annotations.json: {builder.summary()}")
    return 0
