"""The embedder evaluators receive: eval mode, batching, flip test, precision."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facebone.data.decode import to_network_range
from facebone.contracts import routes_inputs
from facebone.errors import ConfigError, DataError
from facebone.eval.fastpath import autocast, prepare, to_input


def images_to_tensor(images: np.ndarray | torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` RGB -> float ``(N, 3, size, size)`` in [-1, 1] (``size`` None: as they are)."""
    tensor = torch.as_tensor(images)
    if tensor.ndim != 4 or tensor.shape[-1] != 3:
        raise DataError(f"embedder expects uint8 images (N, H, W, 3), got shape {tuple(tensor.shape)}")
    x = to_network_range(tensor.permute(0, 3, 1, 2))
    if size is not None and x.shape[-2:] != (size, size):
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
        self.routes = routes_inputs(model)
        """The backbone routes inputs by size: images keep their native size."""
        self._forward: nn.Module = self.model
        if precision != "fp32":  # a copy with batch norm folded and weights in that precision
            from facebone.predict.optimize import inference_model

            self._forward = inference_model(model, precision=precision, channels_last=channels_last, device=device)
        elif channels_last:  # fp32: the model itself, channels-last
            prepare(self.model, precision, channels_last)
        self.compiled = bool(compile)
        if compile:
            self._forward = compile_frozen(self._forward)

    def _groups(self, images: Any) -> list[tuple[np.ndarray | None, Any]]:
        """``[(indices or None for all, images of one size)]``: a sequence of differently sized
        images is grouped by size (first appearance order), an array is one group."""
        if isinstance(images, (np.ndarray, torch.Tensor)):
            return [(None, images)]
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            shape = tuple(np.shape(img))
            if len(shape) != 3 or shape[-1] != 3:
                raise DataError(f"embedder expects uint8 images (H, W, 3), got shape {shape} for image {i}")
            by_size.setdefault(shape, []).append(i)
        return [(np.asarray(idx), np.stack([np.asarray(images[i]) for i in idx])) for idx in by_size.values()]

    def _batches(self, images: np.ndarray, size: int | None) -> Iterator[torch.Tensor]:
        for start in range(0, len(images), self.batch_size):
            yield images_to_tensor(images[start:start + self.batch_size], size)

    def _size_and_kwargs(self, branch: int | None) -> tuple[int | None, dict[str, Any]]:
        """(size images are resized to, or None: native; forward kwargs)."""
        if not self.routes:
            if branch is not None and int(branch) != self.image_size:
                raise ConfigError(f"the backbone serves one input size ({self.image_size}); it has no path for "
                                  f"{branch}x{branch} inputs")
            return self.image_size, {}
        return None, ({} if branch is None else {"branch": int(branch)})

    @torch.no_grad()
    def views(self, images: Any, branch: int | None = None) -> np.ndarray:
        """Raw embeddings ``(V, N, D)``: V = 2 (original, mirrored) with flip test, else 1.

        ``images``: uint8 ``(N, H, W, 3)``, or a sequence of ``(H, W, 3)`` arrays of any sizes.
        A routing backbone gets each image at its native size (``branch`` forces its path);
        any other backbone gets them resized to ``image_size``.
        """
        size, kwargs = self._size_and_kwargs(branch)
        was_training = self.model.training
        self.model.eval()
        n_views = 2 if self.flip else 1
        out = np.empty((n_views, len(images), self.embedding_size), dtype=np.float32)
        try:
            for indices, group in self._groups(images):
                part = np.empty((n_views, len(group), self.embedding_size), dtype=np.float32)
                start = 0
                for batch in self._batches(group, size):
                    batch = batch.to(self.device, non_blocking=True)
                    n = len(batch)
                    if self.compiled and n < self.batch_size:  # one static shape: no recompilation
                        batch = torch.cat([batch, batch.new_zeros((self.batch_size - n, *batch.shape[1:]))])
                    inputs = torch.cat([batch, torch.flip(batch, dims=[3])]) if self.flip else batch
                    with autocast(self.precision, self.device):
                        emb = self._forward(to_input(inputs, self.channels_last), **kwargs)
                    part[:, start:start + n] = emb.float().reshape(n_views, len(batch), -1)[:, :n].cpu().numpy()
                    start += n
                if indices is None:
                    out = part
                else:
                    out[:, indices] = part
        finally:
            self.model.train(was_training)
        return out

    def __call__(self, images: Any, branch: int | None = None) -> np.ndarray:
        """Flip-summed embeddings ``(N, D)`` (not normalised)."""
        return self.views(images, branch).sum(axis=0)
