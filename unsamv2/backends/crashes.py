"""Which image killed a worker: a small Ray actor that keeps track for restarted miner actors.

Every miner actor reports its start (:meth:`CrashRegistry.started`), which tells it whether it is
a restart (Ray restarts a dead actor under the same actor id). A first incarnation mines without
bookkeeping, so a normal run costs one registry call per actor. A restarted actor is *careful*:
before each image it tells the registry which image it starts (:meth:`CrashRegistry.begin`) and
learns how many careful deaths happened with that image in flight. When a careful actor dies and
restarts, the image it was on is charged. An image charged :data:`CRASH_LIMIT` time(s) is not mined
again but recorded as an ``error`` row ``crashed``: a poison image (a decoder segfault, memory
exhaustion) costs its row and two restarts of an actor, not the run (``max_restarts`` >= 2; the
default is 4).
"""

from __future__ import annotations

from typing import Any

CRASH_LIMIT = 1  # careful deaths with the image in flight (the image's first death is untracked)


class CrashRegistry:
    """State: actors seen, the image each careful actor is on ("shard:position"), crash counts."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._current: dict[str, str] = {}
        self._crashes: dict[str, int] = {}

    def started(self, actor_id: str) -> bool:
        """A miner actor (re)started; charges the image its previous careful incarnation was on.
        Returns True for a restart (the actor should be careful)."""
        key = self._current.pop(actor_id, None)
        if key is not None:
            self._crashes[key] = self._crashes.get(key, 0) + 1
        restarted = actor_id in self._seen
        self._seen.add(actor_id)
        return restarted

    def begin(self, actor_id: str, key: str) -> int:
        """``actor_id`` starts mining image ``key``; returns that image's crash count so far."""
        self._current[actor_id] = key
        return self._crashes.get(key, 0)

    def idle(self, actor_id: str) -> None:
        """``actor_id`` finished its batch (a death now is no image's fault)."""
        self._current.pop(actor_id, None)

    def crashes(self) -> dict[str, int]:
        """Crash counts by image key."""
        return dict(self._crashes)


def start_registry() -> Any:
    """A new registry actor for one mining run (no CPU reserved); returns its handle."""
    import ray

    return ray.remote(CrashRegistry).options(num_cpus=0).remote()
