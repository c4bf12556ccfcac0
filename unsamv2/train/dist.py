"""The few collective operations the recipe needs, over ``torch.distributed`` when a process
group is initialised (by Ray Train's ``TorchTrainer`` or ``torchrun``), no-ops otherwise."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as torch_dist


def active() -> bool:
    """True inside an initialised process group with more than one worker."""
    return torch_dist.is_available() and torch_dist.is_initialized() and torch_dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """(this worker's rank, number of workers); (0, 1) without a process group."""
    if not active():
        return 0, 1
    return torch_dist.get_rank(), torch_dist.get_world_size()


def mean_over_workers(value: float, device: torch.device) -> float:
    """The mean of ``value`` over all workers."""
    if not active():
        return float(value)
    tensor = torch.tensor([float(value)], device=device, dtype=torch.float64)
    torch_dist.all_reduce(tensor)
    return float(tensor.item()) / torch_dist.get_world_size()


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every worker's ``obj`` on rank 0 (a list in rank order); None on other ranks."""
    if not active():
        return [obj]
    rank, world = rank_and_world()
    out: list[Any] | None = [None] * world if rank == 0 else None
    torch_dist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every worker."""
    if not active():
        return obj
    box = [obj]
    torch_dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        torch_dist.barrier()
