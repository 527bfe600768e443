"""Optimisers and learning-rate schedules (per optimiser step)."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn


def make_optimizer(params: list[nn.Parameter], train: Any) -> torch.optim.Optimizer:
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay)
    return torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)


def schedule_lambda(train: Any, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """The lr multiplier per optimiser step of a ``[train]`` table: linear warm-up, then the decay
    ``lr_schedule`` asks for; with ``lr_step_unit = "epoch"`` it moves only at epoch boundaries."""
    warmup = int(round(train.warmup_epochs * steps_per_epoch))
    span = max(1, total_steps - warmup)
    milestones = [int(round(m * steps_per_epoch)) for m in train.lr_milestones]

    def decay(step: int) -> float:
        progress = min(1.0, max(0, step - warmup) / span)
        if train.lr_schedule == "poly":
            return (1.0 - progress) ** train.lr_power
        if train.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if train.lr_schedule == "multistep":
            return train.lr_gamma ** sum(step >= m for m in milestones)
        return 1.0

    def factor(step: int) -> float:
        if train.lr_step_unit == "epoch":
            step = (step // steps_per_epoch) * steps_per_epoch
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        return decay(step)

    return factor


def make_schedule(optimizer: torch.optim.Optimizer, train: Any, steps_per_epoch: int,
                  total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The ``[train]`` schedule, stepped once per optimiser step (not per accumulated batch)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_lambda(train, steps_per_epoch, total_steps))


def clip_gradients(replicated: list[nn.Parameter], sharded: list[nn.Parameter], max_norm: float) -> None:
    """Clip the global gradient norm to ``max_norm``.

    ``replicated`` parameters hold the same gradient on every rank (after DDP's all-reduce) and
    count once; ``sharded`` ones (the classifier's rows of this rank) count on every rank, their
    squared norms summed over ranks. In one process this is ``clip_grad_norm_`` over all of them.
    """
    from facebone.train import dist

    if not dist.active():
        nn.utils.clip_grad_norm_(replicated + sharded, max_norm)
        return
    grads = [p.grad for p in replicated if p.grad is not None]
    shard_grads = [p.grad for p in sharded if p.grad is not None]
    device = (grads or shard_grads)[0].device
    own = nn.utils.get_total_norm(grads).to(device) ** 2 if grads else torch.zeros((), device=device)
    rows = nn.utils.get_total_norm(shard_grads).to(device) ** 2 if shard_grads else torch.zeros((), device=device)
    total = (own + dist.all_reduce_sum_(rows.float())).sqrt()
    nn.utils.clip_grads_with_norm_(replicated + sharded, max_norm, total)
