"""CurricularFace (Huang et al., CVPR 2020): easy negatives first, hard negatives later.

With c_y the target cosine and c_y^m = cos(theta_y + m):
    target logit = s * c_y^m           where c_y > cos(pi - m)
                   s * (c_y - m*sin m) elsewhere (ArcFace's fallback)
    other logits = s * c_j * (t + c_j) where c_j > c_y^m (hard negatives), s * c_j elsewhere
    t <- alpha * mean(c_y) + (1 - alpha) * t   (buffer ``t``, 0 at start; alpha = 0.01)
t is updated before it is used, in training mode only; eval mode reads it.

Differences from the reference code (HuangYG123/CurricularFace ``head/metrics.py``):
- mean(c_y) is over the rows whose class is in these columns (label != -1). Under DDP (Partial FC)
  each target cosine lives on one rank only, so the sum and the count are added over ranks with
  ``all_reduce_sum``: t is the global-batch mean, identical on every rank. The reference averages
  each GPU's own batch. A step without any valid row leaves t unchanged.
- Rows with label -1 get neither the target margin nor the hard-negative re-weighting (both are
  defined relative to their target, which is not here).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from facebone.plugins.heads.functional import all_reduce_sum, as_float, cos_plus, put_targets, targets


class CurricularFace(nn.Module):
    t: torch.Tensor

    def __init__(self, scale: float = 64.0, margin: float = 0.5, t_alpha: float = 0.01):
        super().__init__()
        self.scale, self.margin, self.t_alpha = float(scale), float(margin), float(t_alpha)
        self.threshold = math.cos(math.pi - margin)
        self.shift = math.sin(math.pi - margin) * margin
        self.register_buffer("t", torch.zeros(1))

    @torch.no_grad()
    def update_t(self, target: torch.Tensor, valid: torch.Tensor) -> None:
        """One EMA step of t from the valid target cosines (summed over ranks)."""
        stats = torch.stack([torch.where(valid, target, torch.zeros_like(target)).sum(),
                             valid.sum().to(target.dtype)])
        total, count = all_reduce_sum(stats).unbind()
        mean = total / count.clamp_min(1.0)
        new = mean * self.t_alpha + (1.0 - self.t_alpha) * self.t
        self.t.copy_(torch.where(count > 0, new, self.t.to(new.dtype)))

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        target, index, valid = targets(cosine, labels)
        with_margin = cos_plus(target, self.margin)
        final = torch.where(target > self.threshold, with_margin, target - self.shift)
        if self.training:
            self.update_t(target.detach(), valid)
        t = self.t.to(cosine.dtype)
        hard = (cosine > with_margin.detach().unsqueeze(1)) & valid.unsqueeze(1)
        logits = torch.where(hard, cosine * (t + cosine), cosine)
        return put_targets(logits, index, valid, final) * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}, t_alpha={self.t_alpha}"
