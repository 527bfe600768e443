"""DataLoader for training: epoch-seeded, rank-aware sampling; reproducible augmentation;
workers, persistent workers and pinned memory; skipped corrupt records counted per epoch."""
from __future__ import annotations

import sys
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from facebone.errors import ConfigError, FaceboneError


class EpochSampler(Sampler):
    """Shuffled (or ordered) indices for one rank, re-drawn each epoch from ``(seed, epoch)``.

    Like ``DistributedSampler``: every rank draws the same permutation and takes every
    ``world_size``-th index from ``rank``; with ``drop_last`` the tail that does not divide
    evenly is dropped, otherwise the permutation is padded by wrapping around. Each index is
    yielded with a per-sample augmentation seed, ``(index, seed)``.
    """

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.n, self.shuffle, self.seed = int(n), shuffle, int(seed)
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0
        if drop_last:
            self.num_samples = self.n // world_size
        else:
            self.num_samples = -(-self.n // world_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation the next iteration draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def indices(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, augmentation seeds) of this rank for the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        seeds = rng.integers(0, 2**62, self.n, dtype=np.int64)
        total = self.num_samples * self.world_size
        if total > self.n:
            reps = -(-total // max(self.n, 1))
            order, seeds = np.tile(order, reps)[:total], np.tile(seeds, reps)[:total]
        else:
            order, seeds = order[:total], seeds[:total]
        return order[self.rank::self.world_size], seeds[self.rank::self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, seeds = self.indices()
        return iter(zip(order.tolist(), seeds.tolist()))


class SkipCollate:
    """Stack ``(image, label)`` items, dropping ``None`` (a skipped corrupt record).

    Items ``(image, label, size)`` (degradation without upsampling) make a batch resized to
    the first item's ``size`` by ``degrade_batch(images, size)``."""

    def __init__(self, image_shape: tuple[int, ...], degrade_batch: Any = None):
        self.image_shape = image_shape
        self.degrade_batch = degrade_batch

    def __call__(self, batch: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        items = [b for b in batch if b is not None]
        if not items:
            return torch.zeros((0, *self.image_shape)), torch.zeros(0, dtype=torch.long)
        images = torch.stack([b[0] for b in items])
        labels = torch.tensor([b[1] for b in items], dtype=torch.long)
        if len(items[0]) > 2 and self.degrade_batch is not None:
            images = self.degrade_batch(images, int(items[0][2]))
        return images, labels


def unwrap_worker_error(exc: FaceboneError) -> FaceboneError:
    """The original one-line error behind a DataLoader worker's "Caught DataError in DataLoader worker
    process 1. Original Traceback ..." (torch re-raises the worker's error type with its traceback
    text as the message); ``exc`` itself when it is not such a wrapper."""
    text = str(exc)
    if not text.startswith("Caught ") or "Original Traceback" not in text:
        return exc
    cls = type(exc)
    marker = f"{cls.__module__}.{cls.__qualname__}: "
    at = text.rfind(marker)
    if at < 0:
        return exc
    original = text[at + len(marker):].strip()
    if isinstance(exc, ConfigError) and original.count("\n"):
        return ConfigError([line.strip()[2:] if line.strip().startswith("- ") else line.strip()
                            for line in original.splitlines()[1:] if line.strip()])
    return cls(original)


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)


class FaceLoader(DataLoader):
    """A DataLoader that counts skipped corrupt records: after each epoch
    ``skipped_last_epoch`` holds the count (also printed when non-zero) and
    ``skipped_total`` the running total."""

    skipped_last_epoch: int = 0
    skipped_total: int = 0

    def __iter__(self) -> Iterator[Any]:
        expected = len(self.sampler)
        bs = self.batch_size or 1
        seen = 0
        batches = 0
        try:
            for batch in super().__iter__():
                batches += 1
                seen += len(batch[1])
                yield batch
        except FaceboneError as exc:
            raise unwrap_worker_error(exc) from None
        wanted = min(expected, batches * bs) if self.drop_last else expected
        skipped = max(0, wanted - seen)
        self.skipped_last_epoch = skipped
        self.skipped_total += skipped
        if skipped:
            print(f"facebone: skipped {skipped} corrupt record(s) this epoch (skip_corrupt = true)", file=sys.stderr)


def make_loader(dataset: Any, *, batch_size: int, shuffle: bool = True, num_workers: int = 0, seed: int = 0,
                drop_last: bool = True, rank: int = 0, world_size: int = 1, pin_memory: bool = False,
                persistent_workers: bool | None = None, prefetch_factor: int | None = None) -> FaceLoader:
    """A :class:`FaceLoader` over ``dataset`` (a :class:`~facebone.data.dataset.TrainingSet`).

    Sampling is an :class:`EpochSampler` (call ``loader.sampler.set_epoch(e)`` before each
    epoch); the same ``seed`` gives the same batches and augmentations whatever
    ``num_workers``. ``persistent_workers`` defaults to ``num_workers > 0``.
    """
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size,
                           drop_last=drop_last)
    if persistent_workers is None:
        persistent_workers = num_workers > 0
    size = getattr(dataset, "image_size", None)
    shape = (3, *size) if size else (0,)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["worker_init_fn"] = _worker_init
        kwargs["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
    return FaceLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=SkipCollate(shape, getattr(dataset, "degrade_batch", None)), drop_last=drop_last,
                      pin_memory=pin_memory and torch.cuda.is_available(), **kwargs)
