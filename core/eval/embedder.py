"""The embedder evaluators receive: eval mode, batching, flip test, precision."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facebone.data.decode import to_network_range
from facebone.errors import DataError
from facebone.eval.fastpath import autocast, prepare, to_input


def images_to_tensor(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` RGB -> float ``(N, 3, size, size)`` in [-1, 1]."""
    tensor = torch.as_tensor(images)
    if tensor.ndim != 4 or tensor.shape[-1] != 3:
        raise DataError(f"embedder expects uint8 images (N, H, W, 3), got shape {tuple(tensor.shape)}")
    x = to_network_range(tensor.permute(0, 3, 1, 2))
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def compile_frozen(model: nn.Module) -> nn.Module:
    """``torch.compile`` for inference with weights frozen into the graph (conv-BN folding,
    prepacked weights). Compiling takes tens of seconds, so it pays off on large sets only.
    The weights at the first call are baked in: build a new embedder after they change."""
    torch._dynamo.reset()  # a frozen graph cached for this module earlier would hold old weights
    model.eval()
    return torch.compile(model, dynamic=False, options={"freezing": True})


class Embedder:
    """Embeds uint8 RGB images with a model in eval mode (see :class:`facebone.contracts.Embedder`).

    With ``precision`` bf16 (or fp16) it embeds with a copy of the model made for inference
    (:func:`facebone.predict.optimize.inference_model`: batch norm folded, weights in that
    precision), the network ``facebone.load`` runs: build a new embedder after the weights change."""

    def __init__(self, model: nn.Module, *, image_size: int, batch_size: int = 64, flip: bool = True,
                 precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                 device: str | torch.device = "cpu"):
        self.model = model
        self.image_size = int(image_size)
        self.embedding_size = int(model.embedding_size)
        self.batch_size = int(batch_size)
        self.flip = bool(flip)
        self.precision = precision
        self.channels_last = channels_last
        self.device = torch.device(device)
        self._forward: nn.Module = self.model
        if precision != "fp32":  # a copy with batch norm folded and weights in that precision
            from facebone.predict.optimize import inference_model

            self._forward = inference_model(model, precision=precision, channels_last=channels_last, device=device)
        elif channels_last:  # fp32: the model itself, channels-last
            prepare(self.model, precision, channels_last)
        self.compiled = bool(compile)
        if compile:
            self._forward = compile_frozen(self._forward)

    def _batches(self, images: np.ndarray) -> Iterator[torch.Tensor]:
        for start in range(0, len(images), self.batch_size):
            yield images_to_tensor(images[start:start + self.batch_size], self.image_size)

    @torch.no_grad()
    def views(self, images: np.ndarray) -> np.ndarray:
        """Raw embeddings ``(V, N, D)``: V = 2 (original, mirrored) with flip test, else 1."""
        was_training = self.model.training
        self.model.eval()
        n_views = 2 if self.flip else 1
        out = np.empty((n_views, len(images), self.embedding_size), dtype=np.float32)
        try:
            start = 0
            for batch in self._batches(images):
                batch = batch.to(self.device, non_blocking=True)
                n = len(batch)
                if self.compiled and n < self.batch_size:  # one static shape: no recompilation
                    batch = torch.cat([batch, batch.new_zeros((self.batch_size - n, *batch.shape[1:]))])
                inputs = torch.cat([batch, torch.flip(batch, dims=[3])]) if self.flip else batch
                with autocast(self.precision, self.device):
                    emb = self._forward(to_input(inputs, self.channels_last))
                emb = emb.float().reshape(n_views, len(batch), -1)[:, :n].cpu().numpy()
                out[:, start:start + n] = emb
                start += n
        finally:
            self.model.train(was_training)
        return out

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Flip-summed embeddings ``(N, D)`` (not normalised)."""
        return self.views(images).sum(axis=0)
