"""What a run shows while it trains, from rank 0 only: the progress line (global samples/s, loss
and each loss term, learning rate, epoch, step, ETA, fp16 loss scale) and TensorBoard scalars."""
from __future__ import annotations

from typing import Any, Callable

from facebone.progress import Progress
from facebone.rundir import RunDir


class Reporter:
    """Progress line and TensorBoard for rank 0; every method is a no-op on the other ranks."""

    def __init__(self, run: RunDir, *, main: bool, total_samples: int, show_progress: bool, log_every: int,
                 purge_step: int | None = None, log: Callable[[str], None] = print):
        self.main, self.log_every, self.log = main, log_every, log
        self.writer: Any = None
        self.progress: Progress | None = None
        if main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run.tensorboard), purge_step=purge_step)
            self.progress = Progress(total_samples, "train", unit="samples", enabled=show_progress)

    def step(self, *, step: int, last_step: int, epoch: int, samples: int, terms: dict[str, float], lr: float,
             grad_scale: float | None) -> None:
        """After optimiser step ``step`` (1-based) of ``last_step``, which trained on ``samples`` samples."""
        if not self.main:
            return
        loss = sum(terms.values())
        shown: dict[str, Any] = {"loss": loss}
        if len(terms) > 1 or "loss" not in terms:
            shown.update(terms)
        shown.update(lr=lr, epoch=epoch, step=step)
        if grad_scale is not None:
            shown["scale"] = grad_scale
        assert self.progress is not None
        self.progress.update(samples, **shown)
        if step % self.log_every == 0 or step == last_step:
            self.scalars({"train/loss": loss, **{f"train/{k}": v for k, v in terms.items()}, "train/lr": lr,
                          "train/samples_per_s": self.progress.rate}, step)
            if grad_scale is not None:
                self.scalars({"train/grad_scale": grad_scale}, step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
