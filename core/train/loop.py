"""The training loop, and nothing but the loop.

Each optimiser step runs ``[train] accumulate`` micro-batches through the objective (``model ->
classifier -> head -> named loss terms``; DDP synchronises gradients on the last one only),
reduces the loss terms over ranks in one collective, skips the step if any loss was not finite,
unscales, clips and steps. Evaluation runs on rank 0 on a copy of the model, with every random
generator preserved, while the other ranks wait; an evaluation due at a checkpoint step runs
before the checkpoint, so a resumed run repeats neither. Every step's loss also goes to the loss
watch (:mod:`~facebone.train.watch`), whose memory is part of the training state. The pieces come from
:mod:`~facebone.train.components`, the state saved and restored from :mod:`~facebone.train.state`.

Gradients of parameters outside the DDP-wrapped model are made whole by hand: the head's
(computed on each rank's class columns) are summed over ranks, the objective's (computed on each
rank's samples, like the model's) are averaged, as DDP averages the model's.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any, Callable

import torch

from facebone.errors import ConfigError
from facebone.eval.runner import run_evaluators
from facebone.io import atomic_write_json
from facebone.rundir import RunDir
from facebone.train import dist
from facebone.train.components import TrainingParts, build_parts
from facebone.train.dist import Ranks
from facebone.contracts import Batch
from facebone.train.optim import clip_gradients
from facebone.train.report import Reporter
from facebone.train.runtime import resolve_device
from facebone.train.state import TrainingState, preserved_rng
from facebone.train.watch import LossWatch


class Trainer:
    """Trains an experiment's model into ``run_dir``; :meth:`fit` returns the final metrics.

    Every rank constructs one and calls :meth:`fit`; only rank 0 writes. ``resume_from`` is a
    checkpoint of this run to continue from exactly.
    """

    def __init__(self, exp: Any, run_dir: RunDir | Path, *, log: Callable[[str], None] = print, progress: bool = True,
                 ranks: Ranks | None = None, resume_from: Path | None = None):
        self.exp = exp
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.run_dir = self.run.path
        self.ranks = ranks or Ranks(device=resolve_device(exp.train.device))
        self.log = log if self.ranks.is_main else (lambda message: None)
        self.show_progress = progress
        self.resume_from = resume_from
        if exp.train.precision == "fp16" and self.ranks.device.type != "cuda":
            raise ConfigError("[train] precision = 'fp16' needs CUDA; use 'bf16' or 'fp32' on CPU")
        if exp.train.num_threads > 0:
            torch.set_num_threads(exp.train.num_threads)

    # -- the run -------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Set up, train every step, save the last checkpoint and evaluate; the final metrics."""
        self.setup()
        metrics = self.train()
        return self.finish(metrics)

    def setup(self) -> None:
        """Build the components (and restore a checkpoint when resuming)."""
        exp, train, ranks = self.exp, self.exp.train, self.ranks
        self.parts = parts = build_parts(exp, ranks, log=self.log)
        self.state = state = TrainingState(parts.modules, parts.optimizer, parts.scheduler, parts.precision, ranks)
        self.watch = state.watch = LossWatch(parts.sampler.steps_per_epoch, parts.total_steps)
        if self.resume_from is not None:
            state.load(self.resume_from)
            self._restore_results(state.results)
            self.log(f"resumed from {self.resume_from.name} at step {state.position.step} "
                     f"(epoch {state.position.epoch}), {ranks.world_size} process(es)")
        self.samples_per_step = train.batch_size * train.accumulate
        self.log(f"training {exp.backbone.type} ({sum(p.numel() for p in parts.face_model.parameters()) / 1e6:.2f}M "
                 f"params) on {len(parts.dataset)} images of {parts.dataset.num_classes} identities, "
                 f"{parts.total_steps} steps of {self.samples_per_step} on {ranks.world_size} x {ranks.device} "
                 f"({train.precision})")

    def train(self) -> dict[str, float]:
        """Train from the current position to the last step; the latest metrics."""
        parts, state, train = self.parts, self.state, self.exp.train
        pos, total = state.position, parts.total_steps
        self.reporter = Reporter(self.run, main=self.ranks.is_main,
                                 total_samples=(total - pos.step) * self.samples_per_step,
                                 show_progress=self.show_progress, log_every=train.log_every,
                                 purge_step=pos.step + 1 if pos.step else None, log=self.log)
        metrics: dict[str, float] = dict(state.results.get("metrics", {}))
        for module in (parts.model, parts.classifier, parts.head, parts.objective):
            module.train()
        try:
            while pos.step < total:
                parts.sampler.set_epoch(pos.epoch, pos.batch)
                metrics = self._epoch(parts, state, metrics, self.samples_per_step) or metrics
                if pos.step >= total:
                    break
                pos.epoch, pos.batch = pos.epoch + 1, 0
        finally:
            self.reporter.close()
        skipped = getattr(parts.dataset, "corrupt_count", 0)
        if skipped:
            self.log(f"skipped {skipped} corrupt records")
        return metrics

    def finish(self, metrics: dict[str, float]) -> dict[str, float]:
        """Save the last checkpoint and run the final evaluation."""
        if not (self.resume_from is not None and self.resume_from.name == RunDir.LAST):
            self._save(RunDir.LAST)
        step = self.state.position.step
        return self._evaluate(step, f"{RunDir.CHECKPOINTS}/{RunDir.LAST}") or metrics

    def _epoch(self, parts: TrainingParts, state: TrainingState, metrics: dict[str, float],
               samples_per_step: int) -> dict[str, float]:
        """Train the rest of the current epoch (or up to the last step)."""
        train, pos, k = self.exp.train, state.position, self.exp.train.accumulate
        sums: torch.Tensor | None = None
        names: list[str] = []
        micro = 0
        for images, labels in parts.loader:
            batch = Batch(parts.precision.images(images), labels.to(self.ranks.device, non_blocking=True).long())
            if micro == 0:
                saved_buffers = self._snapshot_buffers(parts)
            micro += 1
            terms = self._forward_backward(parts, batch, sync=micro == k)
            if sums is None:
                names = list(terms)
                sums = torch.zeros(len(names) + 1, device=self.ranks.device, dtype=torch.float64)
            values = torch.stack([terms[n] for n in names])
            sums[:-1] += values
            sums[-1] += (~torch.isfinite(values).all())
            pos.batch += 1
            if micro < k:
                continue
            mean, finite = self._optimizer_step(parts, sums, k)
            micro, sums = 0, None
            pos.step += 1
            parts.scheduler.step()
            terms_now = dict(zip(names, mean))
            self.reporter.step(step=pos.step, last_step=parts.total_steps, epoch=pos.epoch,
                               samples=samples_per_step, terms=terms_now,
                               lr=parts.optimizer.param_groups[0]["lr"], grad_scale=parts.precision.grad_scale)
            warning = self.watch.observe(pos.step, sum(mean))
            if warning is not None and self.ranks.is_main:
                LossWatch.report(warning, self.log, self.run, self.reporter.progress)
            if not finite:
                self._restore_buffers(parts, saved_buffers)
                self._nonfinite(state, terms_now)
            else:
                pos.nonfinite_run = 0
            if train.eval_every and pos.step % train.eval_every == 0 and pos.step < parts.total_steps:
                metrics = self._evaluate(pos.step, None) or metrics
            if train.checkpoint_every and pos.step % train.checkpoint_every == 0 and pos.step < parts.total_steps:
                self._save_step(pos.step)
            if pos.step >= parts.total_steps:
                break
        return metrics

    # -- one step ------------------------------------------------------------------------
    def _forward_backward(self, parts: TrainingParts, batch: Batch, *, sync: bool) -> dict[str, torch.Tensor]:
        """The objective on one micro-batch, and its backward pass; the detached loss terms."""
        no_sync = getattr(parts.model, "no_sync", None)
        context = no_sync() if (no_sync is not None and not sync) else contextlib.nullcontext()
        with context:
            with parts.precision.autocast():
                terms = parts.objective(batch, model=parts.model, classifier=parts.classifier, head=parts.head,
                                        teacher=parts.teacher)
            loss = sum(t.float() for t in terms.values())
            k = self.exp.train.accumulate
            parts.precision.backward(loss / k if k > 1 else loss)
        return {name: t.detach().float() for name, t in terms.items()}

    def _optimizer_step(self, parts: TrainingParts, sums: torch.Tensor, k: int) -> tuple[list[float], bool]:
        """Reduce the loss terms over ranks; step unless a loss was not finite. (means, finite)"""
        dist.all_reduce_sum_(sums)
        values = sums.tolist()  # the one host synchronisation of a step
        finite = values[-1] == 0
        means = [v / (k * self.ranks.world_size) for v in values[:-1]]
        if finite:
            self._sync_other_gradients(parts)
            parts.precision.unscale(parts.optimizer)
            if self.exp.train.grad_clip > 0:
                clip_gradients(parts.replicated_params, parts.sharded_params, self.exp.train.grad_clip)
            parts.precision.step(parts.optimizer)
        parts.optimizer.zero_grad(set_to_none=True)
        return means, finite

    def _snapshot_buffers(self, parts: TrainingParts) -> list[torch.Tensor]:
        """The model's and head's buffers (batch-norm statistics, EMA state) as they are before a step,
        copied into storage kept from step to step (one fused copy)."""
        buffers = parts.step_buffers
        saved = getattr(self, "_saved_buffers", None)
        if saved is None:
            saved = self._saved_buffers = [torch.empty_like(b) for b in buffers]
        if buffers:
            torch._foreach_copy_(saved, buffers)
        return saved

    def _restore_buffers(self, parts: TrainingParts, saved: list[torch.Tensor]) -> None:
        """A skipped step leaves no trace: buffers its forward passes updated are put back."""
        if parts.step_buffers:
            torch._foreach_copy_(parts.step_buffers, saved)

    def _sync_other_gradients(self, parts: TrainingParts) -> None:
        if not self.ranks.distributed:
            return
        for module, average in ((parts.head, False), (parts.objective, True)):
            for p in module.parameters():
                if p.requires_grad and p.grad is not None:
                    dist.all_reduce_sum_(p.grad)
                    if average:
                        p.grad.div_(self.ranks.world_size)

    def _nonfinite(self, state: TrainingState, terms: dict[str, float]) -> None:
        pos, limit = state.position, self.exp.train.max_nonfinite
        pos.nonfinite_total += 1
        pos.nonfinite_run += 1
        shown = ", ".join(f"{k}={v}" for k, v in terms.items())
        self.log(f"step {pos.step}: non-finite loss ({shown}); step skipped ({pos.nonfinite_run} in a row, "
                 f"{pos.nonfinite_total} in all)")
        self.reporter.scalars({"train/nonfinite_total": pos.nonfinite_total}, pos.step)
        if pos.nonfinite_run >= limit:
            path = self._save_step(pos.step)
            where = path if path is not None else "the latest checkpoint"
            raise ConfigError(f"training stopped at step {pos.step}: {pos.nonfinite_run} consecutive non-finite "
                              f"losses ([train] max_nonfinite = {limit}); the weights before them are in {where}; "
                              "lower [train] lr or raise warmup_epochs")

    # -- checkpoints and evaluation ------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        exp = self.exp
        return {"experiment": exp.name, "backbone": exp.backbone.type, "num_classes": self.parts.dataset.num_classes,
                "embedding_size": exp.embedding_size}

    def _save(self, name: str) -> Path | None:
        """Checkpoint ``name`` (a collective; rank 0 writes). Its path on rank 0."""
        path = self.state.save(self.run.checkpoints / name, self._meta())
        dist.barrier()
        return path

    def _save_step(self, step: int) -> Path | None:
        path = self._save(self.run.step_checkpoint(step).name)
        keep = self.exp.train.keep_last
        if self.ranks.is_main and keep > 0:
            for _, old in self.run.step_checkpoints()[:-keep]:
                old.unlink()
        return path

    def _evaluate(self, step: int, checkpoint: str | None) -> dict[str, float]:
        """The evaluators on rank 0 (the others wait); metrics are recorded in the results."""

        def work() -> dict[str, float]:
            with preserved_rng(self.ranks.device), torch.no_grad():
                model = copy.deepcopy(self.parts.face_model)  # evaluation never touches the training model
                metrics = run_evaluators(self.exp, model, self.run, self.ranks.device, step=step,
                                         checkpoint=checkpoint, log=self.log)
                del model
            self.reporter.scalars({f"eval/{k}": v for k, v in metrics.items()}, step)
            self.state.results = self.run.read_results()
            return metrics

        metrics = dist.on_main(self.ranks, work)
        dist.barrier()
        return metrics

    def _restore_results(self, results: dict[str, Any]) -> None:
        """Put back the run's results as they were at the checkpoint (later evaluations are redone)."""
        if not self.ranks.is_main:
            return
        if results:
            atomic_write_json(self.run.results, results)
        elif self.run.results.is_file():
            self.run.results.unlink()
