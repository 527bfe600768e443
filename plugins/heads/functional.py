"""Tensor helpers shared by the margin heads (imported by the ``*_model`` modules, never at discovery).

Conventions of every head (the head contract in :mod:`facebone.contracts`):

- ``cosine`` is ``(N, C)``: N rows of the global batch, C columns of this rank's shard.
- ``labels[i] == -1`` means the target class of row ``i`` is not among these C columns: such a row
  gets no margin and takes no part in statistics over target logits.
- Statistics over target logits are summed over ranks with :func:`all_reduce_sum`; statistics over
  norms need no reduction because the rows are already the global batch.
"""
from __future__ import annotations

import math

import torch

from facebone.contracts import all_reduce_sum

__all__ = ["all_reduce_sum", "as_float", "targets", "put_targets", "cos_plus", "arc_target", "safe_acos",
           "psi", "ACOS_EDGE"]

ACOS_EDGE = 1e-7
"""Cosines are kept this far inside [-1, 1] before ``acos``, whose derivative is infinite at +-1."""


def as_float(cosine: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 cosines become fp32; fp32 and fp64 stay (float64 keeps gradcheck exact)."""
    return cosine.float() if cosine.dtype in (torch.float16, torch.bfloat16) else cosine


def targets(cosine: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(target (N,), index (N, 1), valid (N,) bool)``: the target cosine of each row.

    Rows with label -1 read column 0 (any column would do): their value is never changed.
    """
    labels = labels.reshape(-1).long()
    if labels.shape[0] != cosine.shape[0]:
        raise ValueError(f"head: {cosine.shape[0]} rows of cosines but {labels.shape[0]} labels")
    valid = labels >= 0
    index = labels.clamp_min(0).unsqueeze(1)
    return cosine.gather(1, index).squeeze(1), index, valid


def put_targets(logits: torch.Tensor, index: torch.Tensor, valid: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """``logits`` with the target column of each valid row replaced by ``new`` (out of place)."""
    old = logits.gather(1, index).squeeze(1)
    return logits.scatter(1, index, torch.where(valid, new, old).unsqueeze(1))


def cos_plus(cos: torch.Tensor, margin: float | torch.Tensor) -> torch.Tensor:
    """cos(theta + m) from cos(theta), theta in [0, pi]: cos*cos(m) - sin(theta)*sin(m).

    sin(theta) is clamped away from 0 so that the gradient stays finite at cos = +-1.
    """
    if isinstance(margin, torch.Tensor):
        cos_m, sin_m = torch.cos(margin), torch.sin(margin)
    else:
        cos_m, sin_m = math.cos(margin), math.sin(margin)
    sine = torch.sqrt((1.0 - cos * cos).clamp_min(1e-12))
    return cos * cos_m - sine * sin_m


def arc_target(cos: torch.Tensor, margin: float | torch.Tensor, *, easy_margin: bool, fallback: bool) -> torch.Tensor:
    """The ArcFace target cosine cos(theta + m), with its two published variants:

    - ``easy_margin``: the margin only where cos(theta) > 0, cos(theta) elsewhere;
    - ``fallback`` (InsightFace's original): where theta + m > pi, i.e. cos(theta) < cos(pi - m),
      cos(theta) - m*sin(m) instead, which keeps the target logit decreasing in theta.
    Neither: cos(theta + m) everywhere (InsightFace's current CombinedMarginLoss).
    """
    with_margin = cos_plus(cos, margin)
    if easy_margin:
        return torch.where(cos > 0, with_margin, cos)
    if fallback:
        if isinstance(margin, torch.Tensor):
            threshold, shift = torch.cos(math.pi - margin), torch.sin(math.pi - margin) * margin
        else:
            threshold, shift = math.cos(math.pi - margin), math.sin(math.pi - margin) * margin
        return torch.where(cos > threshold, with_margin, cos - shift)
    return with_margin


def safe_acos(cos: torch.Tensor) -> torch.Tensor:
    """acos of ``cos`` kept :data:`ACOS_EDGE` inside [-1, 1] (finite gradient everywhere)."""
    return torch.acos(cos.clamp(-1.0 + ACOS_EDGE, 1.0 - ACOS_EDGE))


def psi(phi: torch.Tensor) -> torch.Tensor:
    """SphereFace's monotonic extension of cos: (-1)^k cos(phi) - 2k for phi in [k*pi, (k+1)*pi].

    Equals cos(phi) on [0, pi], is continuous and decreasing for every phi >= 0.
    """
    k = torch.floor(phi.detach() / math.pi).clamp_min(0)
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    return sign * torch.cos(phi) - 2.0 * k
