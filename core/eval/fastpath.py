"""Fast inference for embedders: channels-last memory and reduced-precision autocast.

The embedder calls::

    model = fastpath.prepare(model, precision="bf16", channels_last=True)   # once
    with fastpath.autocast("bf16", device):                               # per batch
        emb = model(fastpath.to_input(x, channels_last=True)).float()

or simply ``fastpath.embed(model, x, precision, channels_last)``. Precision is one of
``"fp32" | "bf16" | "fp16"``; bf16 needs a CPU with native bf16 (AVX512-BF16 / AMX) to be
fast but is correct everywhere; fp16 is meant for CUDA (CPU fp16 autocast works but is slow
on most CPUs).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from facebone.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")


def _dtype(precision: str) -> Any:
    import torch

    if precision not in PRECISIONS:
        raise ConfigError(f"[embed] key 'precision' = {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def cpu_has_native_bf16() -> bool:
    """True when this CPU runs bf16 matrix maths natively (AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def prepare(model: Any, precision: str = "fp32", channels_last: bool = False) -> Any:
    """Put ``model`` in eval mode, channels-last if asked; returns the same module.

    Weights stay float32 (autocast casts per op), so one prepared model serves every
    precision and embeddings can be compared against fp32 exactly.
    """
    import torch

    _dtype(precision)  # validate
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def to_input(x: Any, channels_last: bool = False) -> Any:
    """The batch in the memory format the prepared model expects."""
    import torch

    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


@contextlib.contextmanager
def autocast(precision: str = "fp32", device: Any = "cpu") -> Iterator[None]:
    """Autocast to ``precision`` on ``device`` ("cpu", "cuda", "cuda:0" or a torch.device); no-op for fp32."""
    import torch

    dtype = _dtype(precision)
    device_type = device if isinstance(device, str) else device.type
    device_type = device_type.split(":")[0]
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device_type, dtype=dtype):
        yield


def embed(model: Any, x: Any, precision: str = "fp32", channels_last: bool = False) -> Any:
    """``model(x)`` under the fast path, no grad, returned as float32."""
    import torch

    with torch.inference_mode(), autocast(precision, x.device):
        return model(to_input(x, channels_last)).float()
