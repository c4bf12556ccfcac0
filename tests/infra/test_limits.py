"""tasks/limits.py: GPU slot arithmetic and the Prefect global concurrency limit in action."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.limits import DEFAULT_RAY_GPU_LIMIT, gpu_slots, ray_gpu_limit_name, ray_gpu_slots
from unsamv2.errors import InputError


@given(st.integers(0, 64), st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 8.0]))
def test_slots_are_the_whole_gpus_reserved(actors, gpus):
    slots = gpu_slots(actors, gpus)
    assert slots >= actors * gpus - 1e-9
    assert slots - 1 < actors * gpus + 1e-9 or slots == 0
    assert slots == math.ceil(round(actors * gpus, 6))


def test_slot_examples_and_bad_input():
    assert gpu_slots(4, 0.5) == 2 and gpu_slots(3, 0.5) == 2 and gpu_slots(10, 0.1) == 1
    assert gpu_slots(8, 0.0) == 0
    with pytest.raises(InputError):
        gpu_slots(-1, 1.0)


def test_limit_name_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("UNSAMV2_RAY_GPU_LIMIT", raising=False)
    assert ray_gpu_limit_name() == DEFAULT_RAY_GPU_LIMIT
    monkeypatch.setenv("UNSAMV2_RAY_GPU_LIMIT", "gpu-pool-b")
    assert ray_gpu_limit_name() == "gpu-pool-b"


def test_cpu_jobs_hold_nothing_and_need_no_server(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens there
    with ray_gpu_slots(16, 0.0) as held:
        assert held == 0


@pytest.mark.integration
@pytest.mark.slow
def test_gpu_jobs_queue_on_the_global_limit(prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError

    name = "ray-gpu-test"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=2))
        with ray_gpu_slots(4, 0.5, limit_name=name) as held:  # 4 half-GPU actors: 2 slots
            assert held == 2
            assert client.read_global_concurrency_limit_by_name(name).active_slots == 2
            blocked: list[BaseException] = []

            def second_job() -> None:
                try:
                    with ray_gpu_slots(1, 1.0, limit_name=name, timeout_seconds=2):
                        pass
                except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                    blocked.append(exc)

            worker = threading.Thread(target=second_job)
            worker.start()
            worker.join(60)
            assert len(blocked) == 1 and isinstance(blocked[0], TimeoutError)
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 0
        with ray_gpu_slots(1, 1.0, limit_name=name, timeout_seconds=10) as held:
            assert held == 1
        with pytest.raises(ConcurrencySlotAcquisitionError, match="greater than the limit"):
            with ray_gpu_slots(3, 1.0, limit_name=name, timeout_seconds=10):
                pass
