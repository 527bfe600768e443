"""Training batches by global batch: the same samples at every step whatever the world size.

Global batch ``s`` of epoch ``e`` is positions ``[s*B, (s+1)*B)`` of the permutation drawn from
``(seed, e)`` (the permutation and per-sample augmentation seeds of
:class:`~facebone.data.loader.EpochSampler`). Rank ``r`` of ``W`` takes the contiguous slice
``[s*B + r*b, s*B + (r+1)*b)`` with ``b = B / W``, so gathering the ranks' embeddings in rank
order gives the one-process batch in the same order. Only whole optimiser steps are drawn: with
``accumulate = k`` an epoch is ``n // (B*k) * k`` micro-batches. ``set_epoch(e, start)`` resumes
an epoch after its first ``start`` micro-batches.
"""
from __future__ import annotations

import sys
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from facebone.data.loader import EpochSampler, SkipCollate, unwrap_worker_error
from facebone.errors import ConfigError, FaceboneError


class GlobalBatchSampler(Sampler):
    """Batch sampler of one rank (see the module docstring); items are ``(index, seed)``."""

    def __init__(self, n: int, global_batch: int, *, seed: int, rank: int = 0, world_size: int = 1,
                 accumulate: int = 1, shuffle: bool = True):
        if global_batch % world_size:
            raise ConfigError(f"[train] batch_size {global_batch} is not divisible by the {world_size} processes; "
                              f"use a multiple of {world_size}")
        self.n, self.global_batch, self.accumulate = int(n), int(global_batch), int(accumulate)
        self.rank, self.world_size = rank, world_size
        self.local_batch = global_batch // world_size
        self.order = EpochSampler(n, shuffle=shuffle, seed=seed)
        self.epoch, self.start = 0, 0

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch."""
        return self.n // (self.global_batch * self.accumulate)

    @property
    def batches_per_epoch(self) -> int:
        """Micro-batches in one epoch."""
        return self.steps_per_epoch * self.accumulate

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Draw epoch ``epoch`` next, skipping its first ``start`` micro-batches."""
        self.epoch, self.start = int(epoch), int(start)
        self.order.set_epoch(epoch)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order, seeds = self.order.indices()
        b = self.local_batch
        for s in range(self.start, self.batches_per_epoch):
            lo = s * self.global_batch + self.rank * b
            yield list(zip(order[lo:lo + b].tolist(), seeds[lo:lo + b].tolist()))


class FillCollate(SkipCollate):
    """Like :class:`SkipCollate`, but a skipped corrupt record's place is taken by a repeat of the
    batch's first readable item, so every rank's batch keeps its size (the ranks' batches are
    gathered, which needs equal sizes). ``skipped`` counts the repeats made in this process."""

    def __call__(self, batch: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        items = [b for b in batch if b is not None]
        if items and len(items) < len(batch):
            print(f"facebone: skipped {len(batch) - len(items)} corrupt record(s) in a batch; repeated another "
                  "image of the batch in their place (skip_corrupt = true)", file=sys.stderr)
            items = items + [items[0]] * (len(batch) - len(items))
        return super().__call__(items)


class BatchLoader(DataLoader):
    """A DataLoader whose worker processes' user errors surface as their own one-line error."""

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from super().__iter__()
        except FaceboneError as exc:
            raise unwrap_worker_error(exc) from None


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)


def make_batch_loader(dataset: Any, sampler: GlobalBatchSampler, *, num_workers: int = 0, pin_memory: bool = False,
                      seed: int = 0) -> BatchLoader:
    """A DataLoader over ``sampler``'s batches. Worker processes persist across epochs; their own
    random state plays no part (augmentation is fixed by the per-sample seeds), and the loader's
    base seed comes from a generator of its own, so the run's global RNG is never drawn from."""
    size = getattr(dataset, "image_size", None)
    shape = (3, *size) if size else (0,)
    collate = FillCollate(shape) if sampler.world_size > 1 else SkipCollate(shape)
    generator = torch.Generator().manual_seed(int(seed) * 1000 + sampler.rank)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(worker_init_fn=_worker_init, persistent_workers=True)
    return BatchLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate,
                      pin_memory=pin_memory and torch.cuda.is_available(), generator=generator, **kwargs)
