"""The crash registry's bookkeeping (the class itself; the Ray path: test_ray_data.py)."""

from unsamv2.backends.crashes import CRASH_LIMIT, CrashRegistry


def test_only_restarted_actors_are_tracked_and_charged():
    registry = CrashRegistry()
    assert registry.started("a") is False  # a first start: not careful, nothing charged
    assert registry.started("a") is True  # Ray restarted it (same id): careful from now on
    assert registry.begin("a", "0:1") == 0
    registry.idle("a")
    assert registry.started("a") is True and registry.crashes() == {}  # died between batches
    assert registry.begin("a", "0:2") == 0
    assert registry.started("a") is True  # died mining 0:2
    assert registry.crashes() == {"0:2": 1}
    assert registry.begin("b", "0:2") == 1 == CRASH_LIMIT  # any careful actor now skips it
    assert registry.begin("b", "0:3") == 0
