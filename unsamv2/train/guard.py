"""Non-finite training: skip the update of a step whose loss or gradient is NaN / inf, stop after
``nan_patience`` such steps in a row, and never checkpoint weights that are not finite.

Every worker of a DDP group takes the same decision without extra communication: the loss it
judges is the mean over workers and the gradients are all-reduced, so a NaN anywhere is a NaN
everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from unsamv2.errors import UnSAMv2Error

log = logging.getLogger(__name__)

_ADVICE = "lower --lr, set --grad-clip or raise --nan-patience"


class TrainingDivergedError(UnSAMv2Error, RuntimeError):
    """Training produced a non-finite loss, gradient or weight and stopped; no checkpoint of
    that step was written."""


@dataclass
class NonFiniteGuard:
    """Counts non-finite steps in a row (``streak``, stored in checkpoints) against ``patience``."""

    patience: int = 0
    streak: int = 0

    def observe(self, step: int, finite: bool, last_checkpoint: str) -> bool:
        """Record step ``step``; True when its update may be applied. Raises
        :class:`TrainingDivergedError` when more than ``patience`` steps in a row were not finite."""
        if finite:
            self.streak = 0
            return True
        self.streak += 1
        if self.streak > self.patience:
            raise TrainingDivergedError(
                f"training diverged: the loss or its gradient was not finite at step {step} ({self.streak} "
                f"consecutive, nan_patience {self.patience}), so training stopped without a checkpoint of that "
                f"step; {_ADVICE}, then resume from the last good checkpoint ({last_checkpoint or 'none yet'}).")
        log.warning("step %d: the loss or its gradient is not finite; its update is skipped (%d in a row, "
                    "nan_patience %d)", step, self.streak, self.patience)
        return False


def finite_gradients(params: Iterable[torch.Tensor]) -> bool:
    """Whether every gradient of ``params`` is finite (one device sync)."""
    peaks = [p.grad.detach().abs().amax().float() for p in params if p.grad is not None and p.grad.numel()]
    return not peaks or bool(torch.isfinite(torch.stack(peaks)).all())


def check_finite_weights(params: Mapping[str, torch.Tensor], step: int, last_checkpoint: str) -> None:
    """Raise :class:`TrainingDivergedError` when a weight in ``params`` is NaN / inf (called before
    a checkpoint is written, so none ever holds such weights)."""
    peaks = {n: p.detach().abs().amax().float() for n, p in params.items() if p.numel()}
    if not peaks:
        return
    finite = torch.isfinite(torch.stack(list(peaks.values())))
    if bool(finite.all()):
        return
    bad = sorted(n for n, ok in zip(peaks, finite.tolist(), strict=True) if not ok)
    shown = ", ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else "")
    raise TrainingDivergedError(
        f"training diverged: the weights are not finite at step {step} ({shown}), so no checkpoint of that step "
        f"was written; {_ADVICE}, then resume from the last good checkpoint ({last_checkpoint or 'none yet'}).")
