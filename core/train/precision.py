"""Numerics of a training run: autocast, fp16 loss scaling and the memory format.

``bf16`` autocasts on CPU and CUDA; ``fp16`` is CUDA only and scales the loss with a GradScaler
(a sharded one under several processes, so a classifier shard that overflows on one rank skips
the step on every rank) whose state is part of the training state. Master weights stay float32.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from facebone.errors import ConfigError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast, loss scaling and the memory format of inputs, for one device."""

    def __init__(self, precision: str, device: torch.device, *, channels_last: bool = False,
                 distributed: bool = False):
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("[train] precision = 'fp16' needs CUDA; use 'bf16' or 'fp32' on CPU")
        self.name, self.device, self.channels_last = precision, device, channels_last
        self.dtype = DTYPES[precision]
        self.scaler: Any = None
        if precision == "fp16":
            if distributed:
                from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

                self.scaler = ShardedGradScaler(device.type)
            else:
                self.scaler = torch.amp.GradScaler(device.type)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Forward passes run under this (a no-op for fp32)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(self.device.type, dtype=self.dtype):
            yield

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move ``model`` to the device (channels-last if asked)."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device, in the model's memory format."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Gradients back in true units (before clipping)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimiser step (skipped by the scaler when fp16 gradients overflowed)."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    @property
    def grad_scale(self) -> float | None:
        """The current fp16 loss scale (None without fp16)."""
        return float(self.scaler.get_scale()) if self.scaler is not None else None

    def state_dict(self) -> dict[str, Any]:
        return dict(self.scaler.state_dict()) if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
