"""Collectives the sharded classifier needs, each an identity in one process.

- :func:`world` -> ``(rank, world_size)`` of the default process group ((0, 1) without one).
- :func:`gather_rows` all-gathers ``(n, ...)`` tensors into ``(W * n, ...)`` in rank order, with
  gradient: the backward pass sums every rank's gradient for a rank's rows and hands it back to
  that rank, multiplied by ``W`` (as arcface_torch's ``AllGather``), so that DDP's gradient
  *averaging* over ranks yields the gradient of the global-batch loss.
- :func:`distributed_cross_entropy`: mean cross-entropy over rows whose columns are split over
  ranks (global max, global sum, target logit from the rank owning it); equals
  ``F.cross_entropy`` in one process.
- :func:`replicated` marks a term that every rank computes identically from gathered rows, so
  that its gradient is counted once.

Every rank must call each of these with the same shapes (the same local batch size ``n``).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_gather(tensor: torch.Tensor) -> torch.Tensor:
    _, size = world()
    parts = [torch.empty_like(tensor) for _ in range(size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.rows = tensor.shape[0]
        return _all_gather(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        rank, size = world()
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[rank * ctx.rows:(rank + 1) * ctx.rows] * size


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """``(W * n, ...)``: every rank's ``tensor`` in rank order (gradient as the module says)."""
    if world()[1] == 1:
        return tensor
    if tensor.requires_grad:
        return _GatherRows.apply(tensor)
    return _all_gather(tensor)


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, factor: float) -> torch.Tensor:  # type: ignore[override]
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.factor, None


def replicated(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` with its gradient divided by the world size, for a loss term every rank computes
    identically from gathered rows (e.g. a function of the classifier's norms).

    The gradient of gathered rows is summed over ranks: right for the cross-entropy, whose ranks
    contribute different columns, but W times too much for a term each rank computes in full.
    """
    if world()[1] == 1:
        return tensor
    return _ScaleGradient.apply(tensor, 1.0 / world()[1])


def all_reduce_(tensor: torch.Tensor, op: str) -> torch.Tensor:
    """In-place all-reduce (``op`` "sum" or "max"); nothing in one process."""
    if world()[1] > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor


class _DistributedCrossEntropy(torch.autograd.Function):
    """loss = mean_i [log sum_j exp(l_ij) - l_i,y_i] with columns j split over ranks.

    The softmax is kept for the backward pass and turned into the gradient in place, so the
    pass holds one ``(N, C_local)`` buffer besides the logits. Backward may run once only.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        rows = logits.shape[0]
        row_max = all_reduce_(logits.detach().amax(dim=1), "max")
        probs = (logits.detach() - row_max[:, None]).exp_()
        denominator = all_reduce_(probs.sum(dim=1), "sum")
        valid = labels >= 0
        index = torch.arange(rows, device=logits.device)
        target = torch.where(valid, logits.detach()[index, labels.clamp_min(0)], torch.zeros((), dtype=logits.dtype,
                                                                                              device=logits.device))
        target = all_reduce_(target, "sum")
        loss = (denominator.log() + row_max - target).mean()
        probs.div_(denominator[:, None])
        ctx.save_for_backward(labels)
        ctx.probs = probs
        return loss

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (labels,) = ctx.saved_tensors
        probs = ctx.probs
        if probs is None:
            raise RuntimeError("distributed_cross_entropy: backward may run only once (no retain_graph)")
        ctx.probs = None
        valid = labels >= 0
        rows = torch.nonzero(valid).squeeze(1)
        probs[rows, labels[rows]] -= 1.0
        probs.mul_(grad / probs.shape[0])
        return probs, None


def distributed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Scalar mean cross-entropy of ``logits (N, C_local)`` (in fp32 at least) with ``labels (N,)``, ``-1`` where
    the target column lives on another rank; the same value on every rank."""
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"cross_entropy: logits (N, C) and labels (N,), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return _DistributedCrossEntropy.apply(logits, labels.long())
