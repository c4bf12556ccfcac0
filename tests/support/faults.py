"""Test-only fault injection for the Ray backend: a ``MinerStage`` wrapper whose worker process exits.

Production code has no fault switch; a test swaps the job's stage for a :class:`FaultyStage`
(:func:`inject`), which wraps the ``before_image`` / ``on_image`` hooks ``process_batch`` already
has. The stage travels to the Ray actors pickled *by value* (:func:`ship_by_value`), so workers need
no access to the tests folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from unsamv2.pipeline.stage import MinerStage


class FaultyStage(MinerStage):
    """``stage`` plus faults: exit after the ``die_after``-th image once per ``once_file`` (the file
    records that it happened), and on every image whose URI contains ``poison``."""

    def __init__(self, stage: MinerStage, *, die_after: int | None = None, once_file: str | None = None,
                 poison: str | None = None) -> None:
        self.__dict__.update(stage.__dict__)
        self.die_after, self.once_file, self.poison = die_after, once_file, poison
        self.seen = 0

    def process_batch(self, batch: Any, on_image: Callable[[dict[str, Any]], None] | None = None,
                      before_image: Callable[[int, int, str], str | None] | None = None, **kwargs: Any) -> Any:
        """The stage's rows, with the faults wired around the backend's own hooks."""

        def before(shard: int, position: int, uri: str) -> str | None:
            reason = before_image(shard, position, uri) if before_image is not None else None
            if reason is None and self.poison and self.poison in uri:
                os._exit(18)  # the backend has registered the image: a crash, as a segfault would be
            return reason

        def after(row: dict[str, Any]) -> None:
            if on_image is not None:
                on_image(row)
            self._tick()

        return super().process_batch(batch, on_image=after, before_image=before, **kwargs)

    def _tick(self) -> None:
        if self.die_after is None or self.once_file is None:
            return
        self.seen += 1
        if self.seen >= self.die_after:
            try:
                fd = os.open(self.once_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self.die_after = None  # already happened once
                return
            os.close(fd)
            os._exit(17)


def ship_by_value() -> None:
    """Let Ray's pickler send this module's classes by value (workers cannot import ``support``)."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def inject(monkeypatch: Any, **faults: Any) -> None:
    """Make every ``MineJob`` of the test run its stage wrapped in a :class:`FaultyStage`."""
    from unsamv2.jobs.mine import MineJob

    original = MineJob.stage
    ship_by_value()
    monkeypatch.setattr(MineJob, "stage", lambda job: FaultyStage(original(job), **faults))
