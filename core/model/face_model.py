"""The model the core trains and embeds with: a warp followed by a backbone."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FaceModel(nn.Module):
    """``warp -> backbone``: images ``(N, 3, H, W)`` in [-1, 1] to raw embeddings ``(N, D)``.

    ``rois`` (optional, per sample) go to the warp. A backbone with ``takes_rois = True``
    (rtnet50) also gets the RoIs the warp used (jittered in training; None for its fixed box).
    """

    def __init__(self, warp: nn.Module, backbone: nn.Module):
        super().__init__()
        self.warp = warp
        self.backbone = backbone
        self.embedding_size = int(backbone.embedding_size)

    def forward(self, images: torch.Tensor, rois: torch.Tensor | None = None, **backbone_kwargs: Any) -> Any:
        """Embeddings; ``backbone_kwargs`` go to the backbone (e.g. ``branch=`` of a routing backbone)."""
        if not getattr(self.backbone, "takes_rois", False):
            return self.backbone(self.warp(images, rois), **backbone_kwargs)
        if hasattr(self.warp, "forward_with_rois"):
            warped, used = self.warp.forward_with_rois(images, rois)
        else:
            warped, used = self.warp(images, rois), rois
        return self.backbone(warped, used, **backbone_kwargs)
