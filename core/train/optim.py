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
