"""TEMPORARY (engine-loop branch only): stand-ins for the classifier and objective interfaces of
COMMON.md "Contracts", until the engine-classifier branch (sharded classifier, objective plugins)
is merged. Single process only. Delete this module when switching to the real ones.
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
    """Today's :class:`Classifier` behind the contract ``(embeddings, labels) -> (cosine, labels_local, norms)``."""

    def __init__(self, num_classes: int, embedding_size: int):
        super().__init__(num_classes, embedding_size)
        self.num_classes = self.num_local = num_classes
        self.class_start = 0

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor):  # type: ignore[override,no-untyped-def]
        with torch.autocast(embeddings.device.type, enabled=False):
            cosine, norms = super().forward(embeddings.float())
        return cosine, labels, norms

    def cross_entropy(self, logits: torch.Tensor, labels_local: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels_local)


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
