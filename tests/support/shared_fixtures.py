"""The one place tests find ``../shared/fixtures`` (next to the repository; CI has it at the same
relative path): official outputs used as numerical oracles. Absent → the test is skipped, saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


def shared_fixture(name: str) -> Path:
    """``../shared/fixtures/<name>``; skips the calling test when the folder is absent."""
    folder = SHARED_FIXTURES / name
    if not folder.is_dir():
        pytest.skip(f"shared fixture folder {folder} is absent (it sits next to the repository in CI)")
    return folder


def has_shared_fixture(name: str) -> bool:
    """Whether ``../shared/fixtures/<name>`` exists (for module-level ``skipif`` marks)."""
    return (SHARED_FIXTURES / name).is_dir()
