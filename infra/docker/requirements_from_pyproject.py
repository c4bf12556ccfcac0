"""Print the project's requirements (dependencies plus the named extras) from pyproject.toml.

Used by the Dockerfiles to install the dependency layer before the source is copied, so a source
change does not rebuild it. Extras that name the project itself (``all = ["unsamv2[s3,ray]"]``)
are expanded. Usage: ``python requirements_from_pyproject.py pyproject.toml s3 ray prefect stats``.
"""

from __future__ import annotations

import re
import sys

import tomllib

_SELF = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.-]+)\s*\[(?P<extras>[^\]]+)\]\s*$")


def requirements(pyproject: dict, extras: list[str]) -> list[str]:
    """Dependencies plus those of ``extras`` (self-references expanded), in order, deduplicated."""
    project = pyproject["project"]
    name = project["name"].lower()
    optional = project.get("optional-dependencies", {})
    out: list[str] = list(project.get("dependencies", []))
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"unknown extra {extra!r}; pyproject.toml defines {sorted(optional)}")
        seen.add(extra)
        for req in optional[extra]:
            match = _SELF.match(req)
            if match and match["name"].lower() == name:
                pending.extend(e.strip() for e in match["extras"].split(","))
            else:
                out.append(req)
    return list(dict.fromkeys(out))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        data = tomllib.load(f)
    print("\n".join(requirements(data, argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
