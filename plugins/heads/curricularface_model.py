"""CurricularFace (Huang et al., CVPR 2020): easy negatives first, hard negatives later.

With c_y the target cosine and c_y^m = cos(theta_y + m):
    target logit = s * c_y^m           where c_y > cos(pi - m)
                   s * (c_y - m*sin m) elsewhere (ArcFace's fallback)
    other logits = s * c_j * (t + c_j) where c_j > c_y^m (hard negatives), s * c_j elsewhere
    t <- alpha * mean(c_y) + (1 - alpha) * t   (buffer ``t``, 0 at start; alpha = 0.01)
t is updated before it is used, in training mode only; eval mode reads it.

Differences from the reference code (HuangYG123/CurricularFace ``head/metrics.py``), which
knows one GPU's batch and all classes:
- Under DDP (Partial FC) a row's target cosine lives on the rank that owns its class, while its
  negatives are spread over every rank. Each step therefore sums over ranks, with
  ``all_reduce_sum``, one ``(3, N)`` tensor: per row the target cosine, cos(theta_y + m) and a
  1 where the class is here. Every rank then knows each row's hard-negative threshold, so a row
  with label -1 here has its hard negatives re-weighted on this rank exactly as in one process,
  and t is the mean over the global batch, identical on every rank (the reference averages each
  GPU's batch). In one process a row with label -1 has no target anywhere: no margin, no
  re-weighting. A step without any target leaves t unchanged.
- The target margin itself is applied only on the owning rank (label != -1).
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
    def row_statistics(self, target: torch.Tensor, with_margin: torch.Tensor,
                       valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per row over all ranks: (target cosine, cos(theta_y + m), whether the class is anywhere)."""
        zero = torch.zeros_like(target)
        local = torch.stack([torch.where(valid, target, zero), torch.where(valid, with_margin, zero),
                             valid.to(target.dtype)])
        total = all_reduce_sum(local)
        return total[0], total[1], total[2] > 0

    @torch.no_grad()
    def update_t(self, target: torch.Tensor, present: torch.Tensor) -> None:
        """One EMA step of t from the global batch's target cosines (rows whose class exists)."""
        count = present.sum().to(target.dtype)
        mean = torch.where(present, target, torch.zeros_like(target)).sum() / count.clamp_min(1.0)
        new = mean * self.t_alpha + (1.0 - self.t_alpha) * self.t
        self.t.copy_(torch.where(count > 0, new, self.t.to(new.dtype)))

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        target, index, valid = targets(cosine, labels)
        with_margin = cos_plus(target, self.margin)
        final = torch.where(target > self.threshold, with_margin, target - self.shift)
        all_target, all_margin, present = self.row_statistics(target.detach(), with_margin.detach(), valid)
        if self.training:
            self.update_t(all_target, present)
        t = self.t.to(cosine.dtype)
        hard = (cosine > all_margin.unsqueeze(1)) & present.unsqueeze(1)
        logits = torch.where(hard, cosine * (t + cosine), cosine)
        return put_targets(logits, index, valid, final) * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}, t_alpha={self.t_alpha}"
