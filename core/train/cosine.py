"""Cosine between embeddings and class centres without a normalised copy of the centres.

``F.linear(F.normalize(x), F.normalize(W))`` materialises a normalised ``(C, D)`` copy of ``W``
and, in the backward pass, its gradient: two extra matrices the size of the classifier, which is
what limits the class count. :func:`cosine_to_rows` computes ``(x W^T) / |W_j|`` instead and
writes the gradient of ``W`` straight into one fresh ``(C, D)`` buffer, block of columns by block
of columns, so the backward pass adds no ``(N, C)`` temporary either:

    dL/dW_j = sum_i g_ij x_i / |W_j|  -  (sum_i g_ij c_ij) W_j / |W_j|^2

(``x`` already normalised, ``c`` the cosines, ``g`` their gradient).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

EPS = 1e-12  # as F.normalize
CHUNK_ELEMENTS = 1 << 24
"""Backward works on blocks of columns of about this many gradient entries (64 MB in fp32)."""


class _CosineToRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, unit: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        norms = torch.linalg.vector_norm(weight, dim=1).clamp_min_(EPS)
        cosine = (unit @ weight.t()).div_(norms)
        ctx.save_for_backward(unit, weight, norms, cosine)
        return cosine

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, Any]:  # type: ignore[override]
        unit, weight, norms, cosine = ctx.saved_tensors
        want_unit, want_weight = ctx.needs_input_grad[:2]
        grad_unit = torch.zeros_like(unit) if want_unit else None
        grad_weight = torch.empty_like(weight) if want_weight else None
        step = max(1, CHUNK_ELEMENTS // max(1, grad.shape[0]))
        for lo in range(0, weight.shape[0], step):  # column blocks: no (N, C) temporary
            hi = min(lo + step, weight.shape[0])
            scaled = grad[:, lo:hi] / norms[lo:hi]  # g_ij / |W_j|
            if want_unit:
                grad_unit.addmm_(scaled, weight[lo:hi])
            if want_weight:
                radial = (scaled * cosine[:, lo:hi]).sum(dim=0).div_(norms[lo:hi])  # sum_i g_ij c_ij / |W_j|^2
                torch.mul(weight[lo:hi], radial.neg_()[:, None], out=grad_weight[lo:hi])
                grad_weight[lo:hi].addmm_(scaled.t(), unit)
        return grad_unit, grad_weight


def cosine_to_rows(embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``(N, C)`` cosines between the rows of ``embeddings (N, D)`` and of ``weight (C, D)``, in
    ``weight``'s dtype (fp32 for half-precision weights)."""
    dtype = torch.float32 if weight.dtype in (torch.float16, torch.bfloat16) else weight.dtype
    unit = F.normalize(embeddings.to(dtype), dim=1)
    return _CosineToRows.apply(unit, weight.to(dtype))
