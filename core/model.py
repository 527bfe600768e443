"""The trainable pieces the core owns: warp + backbone as one model, and the classifier.

The classifier (class centres) belongs to the core, not to heads, so every head works at
every scale: it returns cosines of normalised embeddings and normalised centres.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facebone.errors import PluginError


class FaceModel(nn.Module):
    """``warp -> backbone``: images ``(N, 3, H, W)`` in [-1, 1] to raw embeddings ``(N, D)``."""

    def __init__(self, warp: nn.Module, backbone: nn.Module):
        super().__init__()
        self.warp = warp
        self.backbone = backbone
        self.embedding_size = int(backbone.embedding_size)

    def forward(self, images: torch.Tensor, rois: torch.Tensor | None = None, **backbone_kwargs: Any) -> Any:
        """Embeddings; ``backbone_kwargs`` go to the backbone (e.g. ``branch=`` of a routing backbone)."""
        return self.backbone(self.warp(images, rois), **backbone_kwargs)


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


def build_model(exp: Any) -> FaceModel:
    """Build warp and backbone of a validated experiment, checking the backbone contract."""
    size = exp.data.image_size
    warp = exp.warp.build(image_size=size)
    backbone = exp.backbone.build(embedding_size=exp.embedding_size, image_size=size)
    for obj, kind, spec in ((warp, "warp", exp.warp), (backbone, "backbone", exp.backbone)):
        if not isinstance(obj, nn.Module):
            raise PluginError(f"{kind} '{spec.type}' ({spec.component.provider}) built {type(obj).__name__}, "
                              "not a torch.nn.Module")
    if not hasattr(backbone, "embedding_size"):
        raise PluginError(f"backbone '{exp.backbone.type}' ({exp.backbone.component.provider}) has no "
                          "'embedding_size' attribute")
    if int(backbone.embedding_size) != exp.embedding_size:
        raise PluginError(f"backbone '{exp.backbone.type}' built embedding_size {backbone.embedding_size}, "
                          f"the experiment asks for {exp.embedding_size}")
    return FaceModel(warp, backbone)
