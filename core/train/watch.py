"""Watching the training loss for a run that learns nothing (``lr = 1e4``: exit 0 and garbage).

:class:`LossWatch` remembers the first step's loss; when the first epoch ends (or training,
if it is shorter but long enough to judge) and no later step's loss fell below it, it warns
once: in the log, in the progress line and in ``results.json`` (``"warnings"``).
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
        self.start: float | None = None
        self.lowest = math.inf
        self.warned = False

    def observe(self, step: int, loss: float) -> str | None:
        """Record the loss of ``step`` (1-based); a warning when the first epoch never beat its start."""
        if self.start is None:
            self.start = loss
            return None
        self.lowest = min(self.lowest, loss)
        if self.warned or step != self.judge_at or step < MIN_STEPS:
            return None
        if self.lowest >= self.start:
            self.warned = True
            return (f"WARNING: the training loss never fell below its start ({self.start:.4g}) in the first {step} "
                    f"steps (lowest {self.lowest:.4g}); the model is probably learning nothing: lower [train] lr "
                    "or raise warmup_epochs")
        return None

    @staticmethod
    def report(warning: str, log: Callable[[str], None], run: Any, progress: Any) -> None:
        """Say ``warning`` loudly: a log line, the progress line and the run's ``results.json``."""
        log(warning)
        progress.postfix["WARNING"] = "loss not falling"
        run.add_warnings([warning])
