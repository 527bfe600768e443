"""Optimisers and learning-rate schedules (per optimiser step)."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn


def warmup_poly_lambda(warmup_steps: int, total_steps: int, power: float) -> Callable[[int], float]:
    """LR multiplier per step: linear warm-up to 1, then (1 - progress) ** power down to 0."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return (1.0 - progress) ** power

    return factor


def make_optimizer(params: list[nn.Parameter], train: Any) -> torch.optim.Optimizer:
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay)
    return torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, train: Any, steps_per_epoch: int,
                  total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up then polynomial decay, stepped once per optimiser step (not per accumulated batch)."""
    warmup = int(round(train.warmup_epochs * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_poly_lambda(warmup, total_steps, train.lr_power))


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
