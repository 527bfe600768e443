"""ElasticFace (Boutros et al., CVPRW 2022): a fresh random margin per sample and step.

Each training forward draws m_i ~ N(m, sigma) for every row i, then
    ElasticFace-Arc: target logit s * cos(theta_y + m_i)   (no fallback, as the reference)
    ElasticFace-Cos: target logit s * (cos(theta_y) - m_i)
    other logits s * cos(theta_j).
In eval mode nothing is drawn and m_i = m.

The draws come from a CPU generator owned by the head, seeded from the run's ``seed`` (mixed
with a per-head constant so that they are not the run's torch stream). Its state lives in the
buffer ``generator_state`` (uint8), refreshed after every draw and loaded back into the
generator by ``load_state_dict``: a resumed run draws exactly the margins the uninterrupted one
would have drawn.

Difference from the reference (fdbtrs/ElasticFace ``utils/losses.py``), which draws one margin
per row with label != -1 from the device's global RNG: here one margin is drawn for every row of
the global batch, -1 rows included (they simply do not use theirs), so every rank's generator
advances the same way and a row's margin does not depend on the world size or on which rank owns
its class. The "+" variant (margins re-assigned by the ranking of target cosines) is not built.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from facebone.plugins.heads.functional import as_float, cos_plus, put_targets, targets

SEED_SALT = 0xE1A5_71CF
"""Mixed into the run seed so that the head's stream differs from the run's torch stream."""


def head_seed(seed: int) -> int:
    """A 63-bit generator seed derived from the run seed (stable across versions and platforms)."""
    return int(np.random.SeedSequence([int(seed) % 2**63, SEED_SALT]).generate_state(1, np.uint64)[0] >> 1)


class _ElasticMargin(nn.Module):
    generator_state: torch.Tensor

    def __init__(self, scale: float, margin: float, sigma: float, seed: int = 0):
        super().__init__()
        self.scale, self.margin, self.sigma = float(scale), float(margin), float(sigma)
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(head_seed(seed))
        self.register_buffer("generator_state", self.generator.get_state())

    def draw(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """n margins from N(m, sigma) on ``like``'s device and dtype (advances the generator)."""
        values = torch.normal(self.margin, self.sigma, (n,), generator=self.generator, dtype=torch.float64)
        self.generator_state.copy_(self.generator.get_state())
        return values.to(device=like.device, dtype=like.dtype)

    def margins(self, n: int, like: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.draw(n, like)
        return torch.full((n,), self.margin, device=like.device, dtype=like.dtype)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.generator.set_state(self.generator_state.detach().to("cpu").contiguous())

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}, sigma={self.sigma}"


class ElasticArcFace(_ElasticMargin):
    """Target logit s*cos(theta_y + m_i), m_i ~ N(m, sigma) per row (default m 0.5, sigma 0.05)."""

    def __init__(self, scale: float = 64.0, margin: float = 0.5, sigma: float = 0.05, seed: int = 0):
        super().__init__(scale, margin, sigma, seed)

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        target, index, valid = targets(cosine, labels)
        new = cos_plus(target, self.margins(cosine.shape[0], cosine))
        return put_targets(cosine, index, valid, new) * self.scale


class ElasticCosFace(_ElasticMargin):
    """Target logit s*(cos(theta_y) - m_i), m_i ~ N(m, sigma) per row (default m 0.35, sigma 0.05)."""

    def __init__(self, scale: float = 64.0, margin: float = 0.35, sigma: float = 0.05, seed: int = 0):
        super().__init__(scale, margin, sigma, seed)

    def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        cosine = as_float(cosine).clamp(-1.0, 1.0)
        target, index, valid = targets(cosine, labels)
        new = target - self.margins(cosine.shape[0], cosine)
        return put_targets(cosine, index, valid, new) * self.scale
