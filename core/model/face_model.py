"""The model the core trains and embeds with: a warp followed by a backbone."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


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
