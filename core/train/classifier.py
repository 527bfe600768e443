"""The classifier the core owns: class centres and the cosines a margin head turns into logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Classifier(nn.Module):
    """Class centres ``(C, D)``; ``forward`` gives cosines ``(N, C)`` and embedding norms ``(N, 1)``."""

    def __init__(self, num_classes: int, embedding_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size).normal_(0.0, 0.01))

    def forward(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = embeddings.float()
        norms = embeddings.norm(dim=1, keepdim=True)
        cosine = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight.float(), dim=1))
        return cosine, norms
