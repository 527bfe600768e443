"""Combined margin (m1, m2, m3) and SphereFace (multiplicative angular margin) modules."""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.heads.functional import as_float, psi, put_targets, safe_acos, targets


class CombinedMargin(nn.Module):
    """Target logit s*(cos(m1*theta + m2) - m3), other logits s*cos(theta) (ArcFace paper, §3.3).

    All three margins act together, with the true gradient through theta, as InsightFace's
    MXNet-era implementation (its current PyTorch ``CombinedMarginLoss`` ignores m1, and m2 when
    m3 > 0). ``monotonic`` continues past m1*theta + m2 > pi with SphereFace's psi instead of the
    raw cosine, which turns back up there.

    ``interclass_filtering_threshold`` t > 0 (InsightFace): a non-target cosine above t becomes 0
    (logit 0, no gradient), the target of a valid row is kept, and a row with label -1 (all its
    columns are negatives here) has every cosine above t zeroed.
    """

    def __init__(self, scale: float = 64.0, m1: float = 1.0, m2: float = 0.3, m3: float = 0.2, *,
                 interclass_filtering_threshold: float = 0.0, monotonic: bool = False):
        super().__init__()
        self.scale, self.m1, self.m2, self.m3 = float(scale), float(m1), float(m2), float(m3)
        self.threshold = float(interclass_filtering_threshold)
        self.monotonic = monotonic

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        target, index, valid = targets(cosine, labels)
        if self.threshold > 0:
            with torch.no_grad():
                dirty = cosine > self.threshold
                own_target = torch.zeros_like(dirty).scatter_(1, index, valid.unsqueeze(1))
                keep = (~(dirty & ~own_target)).to(cosine.dtype)
            cosine = cosine * keep
        phi = self.m1 * safe_acos(target) + self.m2
        body = psi(phi) if self.monotonic else torch.cos(phi)
        return put_targets(cosine, index, valid, body - self.m3) * self.scale

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, m1={self.m1}, m2={self.m2}, m3={self.m3}, "
                f"interclass_filtering_threshold={self.threshold}, monotonic={self.monotonic}")


class SphereFace(nn.Module):
    """A-Softmax (Liu et al., CVPR 2017): target psi(m*theta), psi(phi) = (-1)^k cos(phi) - 2k on
    [k*pi, (k+1)*pi], the monotonic extension of cos(m*theta); other logits cos(theta).

    The logits are scaled by s, or by the embedding norm ``||x||`` with ``feature_scale`` (the
    original A-Softmax on unnormalised features; the gradient then flows into the norms).

    Annealing (the paper's training recipe), when ``anneal_base`` > 0: the target becomes
    (lambda*cos(theta) + psi)/(1 + lambda) with lambda = max(anneal_min, base*(1 + gamma*i)^-power),
    i the number of training forwards so far, counted in the ``step`` buffer (incremented before
    use, as the reference implementations do; not in eval mode).
    """

    step: torch.Tensor

    def __init__(self, scale: float = 64.0, margin: float = 1.35, *, feature_scale: bool = False,
                 anneal_base: float = 0.0, anneal_gamma: float = 0.12, anneal_power: float = 1.0,
                 anneal_min: float = 5.0):
        super().__init__()
        self.scale, self.margin, self.feature_scale = float(scale), float(margin), feature_scale
        self.anneal_base, self.anneal_gamma = float(anneal_base), float(anneal_gamma)
        self.anneal_power, self.anneal_min = float(anneal_power), float(anneal_min)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def anneal_lambda(self) -> torch.Tensor:
        """lambda at the current ``step`` (a 0-d tensor: no host synchronisation)."""
        base = self.anneal_base * (1.0 + self.anneal_gamma * self.step.double()) ** (-self.anneal_power)
        return base.clamp_min(self.anneal_min)

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        target, index, valid = targets(cosine, labels)
        new = psi(self.margin * safe_acos(target))
        if self.training:
            with torch.no_grad():
                self.step.add_(1)
        if self.anneal_base > 0:
            lam = self.anneal_lambda().to(cosine.dtype)
            new = (lam * target + new) / (1.0 + lam)
        logits = put_targets(cosine, index, valid, new)
        if self.feature_scale:
            if norms is None:
                raise ValueError("sphereface with feature_scale = true needs the embedding norms (N, 1)")
            return logits * norms.reshape(-1, 1).to(logits.dtype)
        return logits * self.scale

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, margin={self.margin}, feature_scale={self.feature_scale}, "
                f"anneal_base={self.anneal_base}")
