"""Seeds and the learning-rate schedule of a training run (pure functions of the config)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

from unsamv2.train.config import TrainConfig

__all__ = ["cosine_factor", "derive_seed"]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and platforms)."""
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def cosine_factor(config: TrainConfig) -> Callable[[int], float]:
    """LR multiplier at step t: linear warm-up over ``warmup_steps`` (from 1 / warmup), then a
    cosine from 1 to ``min_lr / lr`` over ``max_steps``."""
    low = config.min_lr / config.lr
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(step / config.max_steps, 1.0)
        return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
