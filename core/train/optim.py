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
