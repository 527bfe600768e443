"""TEMPORARY (engine-loop branch only): stand-ins for the classifier and objective interfaces of
COMMON.md "Contracts", until the engine-classifier branch (sharded classifier, objective plugins)
is merged. Delete this module when switching to the real ones.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from facebone.train.classifier import Classifier


class Batch(NamedTuple):
    """What an objective receives: this rank's share of the global batch."""

    images: torch.Tensor
    labels: torch.Tensor


class FullClassifier(Classifier):
    """Today's :class:`Classifier` behind the contract ``(embeddings, labels) -> (cosine, labels_local, norms)``.

    Replicated, not sharded: under several processes every rank gathers the global batch (with
    gradient) and computes the full softmax over it, so every rank holds the same classifier.
    """

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor):  # type: ignore[override,no-untyped-def]
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            embeddings = _GatherRows.apply(embeddings.float().contiguous())
            parts = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, labels.contiguous())
            labels = torch.cat(parts)
        with torch.autocast(embeddings.device.type, enabled=False):
            cosine, norms = super().forward(embeddings.float())
        return cosine, labels, norms

    def cross_entropy(self, logits: torch.Tensor, labels_local: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels_local)


class _GatherRows(torch.autograd.Function):
    """All-gather rows; the gradient of each rank's rows is summed over ranks (a reduce-scatter)."""

    @staticmethod
    def forward(ctx, local: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        import torch.distributed as dist

        parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, local)
        ctx.rows, ctx.rank = local.shape[0], dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


class ClassificationObjective(nn.Module):
    """model -> classifier -> head -> {"ce": ..., **head.loss_terms(norms)}."""

    def forward(self, batch: Batch, *, model: nn.Module, classifier: Any, head: nn.Module,
                teacher: Any = None) -> dict[str, torch.Tensor]:
        embeddings = model(batch.images)
        cosine, labels_local, norms = classifier(embeddings, batch.labels)
        with torch.autocast(cosine.device.type, enabled=False):
            logits = head(cosine, labels_local, norms)
            terms = {"ce": classifier.cross_entropy(logits, labels_local)}
            extra = getattr(head, "loss_terms", None)
            if extra is not None:
                terms.update(extra(norms))
        return terms
