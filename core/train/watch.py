"""Watching the training loss for a run that learns nothing (``lr = 1e4``: exit 0 and garbage).

:class:`LossWatch` keeps the losses of the first epoch. When it ends (or training does, if it
is shorter but long enough to judge), the loss has not fallen if its mean over the epoch's
last third is not below its mean over the first third (means smooth step-to-step noise). It
then warns once: in the log, in the progress line and in ``results.json`` (``"warnings"``).
"""
from __future__ import annotations

import math
from typing import Any, Callable

MIN_STEPS = 4
"""Fewer steps than this say nothing about the loss."""


class LossWatch:
    """``observe(step, loss)`` after every step; it returns a warning once, or None."""

    def __init__(self, steps_per_epoch: int, total_steps: int):
        self.judge_at = min(steps_per_epoch, total_steps)
        self.losses: list[float] = []

    def observe(self, step: int, loss: float) -> str | None:
        """Record the loss of ``step`` (1-based); a warning when the first epoch ends without progress."""
        if step > self.judge_at:
            return None
        self.losses.append(loss)
        if step != self.judge_at or step < MIN_STEPS:
            return None
        k = max(1, len(self.losses) // 3)
        start, end = sum(self.losses[:k]) / k, sum(self.losses[-k:]) / k
        if math.isfinite(end) and end < start:
            return None
        return (f"WARNING: the training loss did not fall in the first {step} steps (mean of the first {k} steps "
                f"{start:.4g}, of the last {k} {end:.4g}); the model is probably learning nothing: lower [train] lr "
                "or raise warmup_epochs")

    @staticmethod
    def report(warning: str, log: Callable[[str], None], run: Any, progress: Any) -> None:
        """Say ``warning`` loudly: a log line, the progress line and the run's ``results.json``."""
        log(warning)
        progress.postfix["WARNING"] = "loss not falling"
        run.add_warnings([warning])
