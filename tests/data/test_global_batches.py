"""The global batch at each step is the same set of samples whatever the world size."""
import numpy as np
import pytest

from facebone.data.global_batches import GlobalBatchSampler
from facebone.data.loader import EpochSampler
from facebone.errors import ConfigError


def global_batches(world: int, n: int = 103, batch: int = 12, epoch: int = 3, accumulate: int = 1, start: int = 0):
    ranks = [GlobalBatchSampler(n, batch, seed=7, rank=r, world_size=world, accumulate=accumulate)
             for r in range(world)]
    for s in ranks:
        s.set_epoch(epoch, start)
    per_rank = [list(s) for s in ranks]
    assert len({len(b) for b in per_rank}) == 1
    return [sum((rank_batches[i] for rank_batches in per_rank), []) for i in range(len(per_rank[0]))]


def test_every_world_size_sees_the_same_batches_in_the_same_order():
    one = global_batches(1)
    assert len(one) == 103 // 12 and all(len(b) == 12 for b in one)
    for world in (2, 3, 4, 6):
        assert global_batches(world) == one  # same samples, same augmentation seeds, same row order
    flat = [i for b in one for i, _ in b]
    assert len(set(flat)) == len(flat)  # no sample twice in an epoch


def test_batches_follow_the_epoch_permutation():
    sampler = EpochSampler(103, seed=7)
    sampler.set_epoch(3)
    order, seeds = sampler.indices()
    one = global_batches(1)
    assert [i for i, _ in one[1]] == order[12:24].tolist() and [s for _, s in one[1]] == seeds[12:24].tolist()
    assert global_batches(1, epoch=4) != one


def test_resume_skips_the_batches_already_trained():
    full = global_batches(2)
    assert global_batches(2, start=5) == full[5:]
    sampler = GlobalBatchSampler(103, 12, seed=7, world_size=2)
    sampler.set_epoch(0, 5)
    assert len(sampler) == len(full) - 5


def test_accumulation_draws_whole_optimiser_steps_of_the_same_samples():
    micro = global_batches(2, batch=6, accumulate=2)
    whole = global_batches(2, batch=12)
    assert len(micro) == 2 * len(whole) == 2 * (103 // 12)
    assert [a + b for a, b in zip(micro[::2], micro[1::2])] == whole
    odd = global_batches(1, n=60, batch=12, accumulate=2)
    assert len(odd) == 4  # 60 // 12 = 5 batches, but only 2 whole optimiser steps of 2


def test_a_batch_that_does_not_divide_over_the_ranks_is_a_user_error():
    with pytest.raises(ConfigError, match=r"batch_size 10 is not divisible by the 3 processes"):
        GlobalBatchSampler(100, 10, seed=0, world_size=3)
