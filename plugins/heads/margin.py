"""Margin heads on cosine logits: ArcFace (additive angular) and CosFace (additive cosine).

Both take the cosine between normalised embeddings and normalised class centres (the
classifier belongs to the core) and return scaled logits for cross-entropy.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import facebone
from facebone import option


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArcFaceOptions:
    scale: float = option(64.0, "logit scale s")
    margin: float = option(0.5, "additive angular margin m (radians)")
    easy_margin: bool = option(False, "apply the margin only where cos(theta) > 0 instead of the "
                                      "linear fallback when theta + m > pi")

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if not 0 <= self.margin < math.pi / 2:
            raise ValueError(f"margin must be in [0, pi/2), got {self.margin}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CosFaceOptions:
    scale: float = option(64.0, "logit scale s")
    margin: float = option(0.4, "additive cosine margin m")

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")


def build_arcface(options: ArcFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class ArcFace(nn.Module):
        """logit_target = s * cos(theta + m); where theta + m would pass pi (cos(theta) <
        cos(pi - m)), the target logit becomes s * (cos(theta) - m * sin(m)), which keeps it
        monotonic in theta (InsightFace's fallback)."""

        def __init__(self, scale: float, margin: float, easy_margin: bool):
            super().__init__()
            self.scale, self.margin, self.easy_margin = scale, margin, easy_margin
            self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
            self.threshold = math.cos(math.pi - margin)
            self.fallback = math.sin(math.pi - margin) * margin

        def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None):
            cosine = cosine.float().clamp(-1.0, 1.0)
            index = torch.arange(cosine.shape[0], device=cosine.device)
            target = cosine[index, labels]
            sine = torch.sqrt((1.0 - target * target).clamp_min(1e-12))
            with_margin = target * self.cos_m - sine * self.sin_m
            if self.easy_margin:
                with_margin = torch.where(target > 0, with_margin, target)
            else:
                with_margin = torch.where(target > self.threshold, with_margin, target - self.fallback)
            logits = cosine.clone()
            logits[index, labels] = with_margin
            return logits * self.scale

    return ArcFace(options.scale, options.margin, options.easy_margin)


def build_cosface(options: CosFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class CosFace(nn.Module):
        """logit_target = s * (cos(theta) - m); other logits s * cos(theta)."""

        def __init__(self, scale: float, margin: float):
            super().__init__()
            self.scale, self.margin = scale, margin

        def forward(self, cosine: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None):
            cosine = cosine.float()
            index = torch.arange(cosine.shape[0], device=cosine.device)
            logits = cosine.clone()
            logits[index, labels] = cosine[index, labels] - self.margin
            return logits * self.scale

    return CosFace(options.scale, options.margin)


@facebone.hookimpl
def facebone_heads(registry):  # type: ignore[no-untyped-def]
    registry.add("arcface", build_arcface, options=ArcFaceOptions,
                 summary="ArcFace: additive angular margin s*cos(theta+m) (Deng et al., CVPR 2019)")
    registry.add("cosface", build_cosface, options=CosFaceOptions,
                 summary="CosFace: additive cosine margin s*(cos(theta)-m) (Wang et al., CVPR 2018)")
