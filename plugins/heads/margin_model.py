"""ArcFace, CosFace and sub-center ArcFace modules (fixed additive margins, no state).

Every head takes cosines ``(N, C)`` (clamped here to [-1, 1], as InsightFace does), labels
``(N,)`` with -1 for "target not in these columns", and norms ``(N, 1)`` (unused here), and
returns scaled logits ``(N, C)``.
"""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.heads.functional import arc_target, as_float, put_targets, targets


class ArcFace(nn.Module):
    """Target logit s*cos(theta + m), other logits s*cos(theta) (Deng et al., CVPR 2019).

    By default the gradient is the true derivative of that formula. With ``straight_through``
    the margin is added outside autograd, as InsightFace's current ``CombinedMarginLoss`` does:
    the forward value is unchanged and d logit / d cos = s for every entry. ``easy_margin`` and
    ``fallback`` choose what happens where theta + m > pi (see ``functional.arc_target``);
    ``straight_through=True, fallback=False`` reproduces InsightFace's numbers exactly.
    """

    def __init__(self, scale: float = 64.0, margin: float = 0.5, *, easy_margin: bool = False,
                 fallback: bool = True, straight_through: bool = False):
        super().__init__()
        self.scale, self.margin = float(scale), float(margin)
        self.easy_margin, self.fallback, self.straight_through = easy_margin, fallback, straight_through

    def margin_logits(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Unscaled logits: the cosines with the margin on each valid target."""
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        target, index, valid = targets(cosine, labels)
        new = arc_target(target, self.margin, easy_margin=self.easy_margin, fallback=self.fallback)
        if self.straight_through:
            new = target + (new - target).detach()
        return put_targets(cosine, index, valid, new)

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        return self.margin_logits(cosine, labels) * self.scale

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, margin={self.margin}, easy_margin={self.easy_margin}, "
                f"fallback={self.fallback}, straight_through={self.straight_through}")


class CosFace(nn.Module):
    """Target logit s*(cos(theta) - m), other logits s*cos(theta) (Wang et al., CVPR 2018)."""

    def __init__(self, scale: float = 64.0, margin: float = 0.4):
        super().__init__()
        self.scale, self.margin = float(scale), float(margin)

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        target, index, valid = targets(cosine, labels)
        return put_targets(cosine, index, valid, target - self.margin) * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}"


class SubcenterArcFace(ArcFace):
    """Sub-center ArcFace (Deng et al., ECCV 2020): ArcFace on the best of K centres per class.

    The K centres of each class belong to the core's classifier (``[classifier] subcenters = K``,
    which shards them with their class under Partial FC). The classifier may hand over
    ``(N, C, K)`` sub-centre cosines, reduced here with a max over K, or ``(N, C)`` cosines it
    already reduced; either way the margin is ArcFace's on the max.
    """

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        if cosine.dim() == 3:
            cosine = cosine.amax(dim=2)
        elif cosine.dim() != 2:
            raise ValueError(f"subcenter head: cosines must be (N, C) or (N, C, K), got shape {tuple(cosine.shape)}")
        return super().forward(cosine, labels, norms)
