"""AdaFace (Kim et al., CVPR 2022): a margin that adapts to image quality through the feature norm.

Per row, with n = clip(||x||, 0.001, 100) detached and the EMA statistics mu, sigma of n:
    z = clip(h * (n - mu) / (sigma + eps), -1, 1)
    target logit = s * (cos(clip(theta_y - m*z, eps, pi - eps)) - (m + m*z))
    other logits = s * cos(theta_j),  cosines clamped to [-1 + eps, 1 - eps], eps = 1e-3.
z = -1 gives ArcFace(m), z = 0 CosFace(m), z = +1 s*(cos(theta - m) - 2m).

State (buffers ``batch_mean`` = 20, ``batch_std`` = 100, as the reference): in training mode,
before the margin, mu <- alpha*mean(n) + (1 - alpha)*mu and sigma <- alpha*std(n) + (1 - alpha)*sigma,
std unbiased; a batch of one row updates mu only (its std is undefined). Eval mode reads them.

Differences from the reference code (mk-minchul/AdaFace ``head.py``):
- The statistics are over every row of the batch, rows with label -1 included (their norms are
  real samples of the batch). Under DDP the rows are the global batch, so mu and sigma are
  global-batch statistics, identical on every rank; the reference takes them over each GPU's
  own batch, which makes its buffers differ between GPUs.
- Rows with label -1 get no margin.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from facebone.plugins.heads.functional import as_float, put_targets, targets

EPS = 1e-3


class AdaFace(nn.Module):
    batch_mean: torch.Tensor
    batch_std: torch.Tensor

    def __init__(self, scale: float = 64.0, margin: float = 0.4, h: float = 0.333, t_alpha: float = 0.01):
        super().__init__()
        self.scale, self.margin, self.h, self.t_alpha = float(scale), float(margin), float(h), float(t_alpha)
        self.register_buffer("batch_mean", torch.full((1,), 20.0))
        self.register_buffer("batch_std", torch.full((1,), 100.0))

    @torch.no_grad()
    def update_statistics(self, norms: torch.Tensor) -> None:
        """One EMA step of the norm statistics from ``norms`` (already clipped and detached)."""
        alpha = self.t_alpha
        mean = norms.mean()
        self.batch_mean.copy_(mean * alpha + (1.0 - alpha) * self.batch_mean)
        if norms.numel() > 1:
            std = norms.std()
            self.batch_std.copy_(std * alpha + (1.0 - alpha) * self.batch_std)

    def quality(self, norms: torch.Tensor) -> torch.Tensor:
        """z in [-1, 1] per row, from norms ``(N,)`` and the current statistics."""
        z = (norms - self.batch_mean) / (self.batch_std + EPS)
        return torch.clip(z * self.h, -1.0, 1.0)

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        if norms is None:
            raise ValueError("adaface needs the embedding norms (N, 1)")
        cosine = as_float(cosine).clamp(-1.0 + EPS, 1.0 - EPS)
        safe_norms = torch.clip(norms.detach().reshape(-1).to(cosine.dtype), 0.001, 100.0)
        if self.training:
            self.update_statistics(safe_norms)
        z = self.quality(safe_norms).to(cosine.dtype)
        target, index, valid = targets(cosine, labels)
        theta = torch.clip(torch.acos(target) - self.margin * z, EPS, math.pi - EPS)
        new = torch.cos(theta) - (self.margin + self.margin * z)
        return put_targets(cosine, index, valid, new) * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}, h={self.h}, t_alpha={self.t_alpha}"
