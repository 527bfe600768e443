"""Inference versions of a backbone: batch norm folded into the layer before it, weights in the
asked precision, channels-last memory, optionally a frozen compiled graph.

* :func:`fold_batchnorm`: every ``BatchNorm`` whose input is the output of a convolution or a
  linear layer used by nothing else is folded into that layer's weight and bias (exact up to
  rounding). Found on the torch.fx graph, so any traceable backbone gets it; in a backbone that
  fx cannot trace (data-dependent control flow, such as routing by input size), the pairs that
  sit next to each other in an ``nn.Sequential`` are folded.
* :func:`inference_backbone`: the folded backbone in eval mode with weights in bf16 (``precision
  = "bf16"``) or fp16 (on CUDA), so no per-call casts of weights remain; on the CPU, fp16 keeps
  fp32 weights under autocast (CPUs have no fast fp16 convolutions).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
FOLDS_INTO = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
KEPT_ATTRIBUTES = ("embedding_size", "input_size", "input_sizes")


def _fold(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """``layer`` followed by ``bn`` (eval statistics) as one layer of the same kind."""
    folded = copy.deepcopy(layer)
    w = folded.weight.detach().double()
    scale = bn.running_var.double().add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    bias = folded.bias.detach().double() if folded.bias is not None else torch.zeros_like(shift)
    dims = [-1] + [1] * (w.dim() - 1)
    if isinstance(layer, nn.Linear) or not getattr(layer, "transposed", False):
        new_w = w * scale.reshape(dims)
    else:  # transposed convolutions keep output channels on axis 1
        new_w = w * scale.reshape(1, -1, *([1] * (w.dim() - 2)))
    dtype = layer.weight.dtype
    folded.weight = nn.Parameter(new_w.to(dtype), requires_grad=False)
    folded.bias = nn.Parameter((bias * scale + shift).to(dtype), requires_grad=False)
    return folded


def _folds(layer: nn.Module, bn: nn.Module) -> bool:
    if not isinstance(layer, FOLDS_INTO) or not isinstance(bn, BATCHNORMS):
        return False
    if not bn.track_running_stats or bn.running_mean is None:
        return False
    out_features = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    return out_features == bn.num_features


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """``(folded copy of model, number of batch norms folded)``; ``(unfolded copy, 0)`` when
    torch.fx cannot trace it. The copy keeps ``embedding_size``, ``input_size`` and ``input_sizes``;
    ``model`` itself is never changed."""
    from torch import fx

    model = copy.deepcopy(model).eval()
    try:
        traced = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - untraceable backbones: only what nn.Sequential chains show
        return model, fold_sequential_batchnorm(model)
    modules = dict(traced.named_modules())
    folded = 0
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), BATCHNORMS):
            continue
        prev = node.args[0] if node.args else None
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        layer, bn = modules[prev.target], modules[node.target]
        if not _folds(layer, bn):
            continue
        parent_name, _, attr = prev.target.rpartition(".")
        setattr(traced.get_submodule(parent_name) if parent_name else traced, attr, _fold(layer, bn))
        node.replace_all_uses_with(prev)
        traced.graph.erase_node(node)
        folded += 1
    traced.graph.lint()
    traced.delete_all_unused_submodules()
    traced.recompile()
    for key in KEPT_ATTRIBUTES:
        if hasattr(model, key):
            setattr(traced, key, getattr(model, key))
    return traced.eval(), folded


def fold_sequential_batchnorm(model: nn.Module) -> int:
    """Fold, in place, every batch norm that directly follows a convolution or linear layer inside
    an ``nn.Sequential`` (the one case visible without tracing); returns how many were folded."""
    folded = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            layer, bn = seq._modules[a], seq._modules[b]
            if layer is not None and bn is not None and _folds(layer, bn):
                seq._modules[a] = _fold(layer, bn)
                seq._modules[b] = nn.Identity()
                folded += 1
    return folded


@dataclasses.dataclass
class InferenceBackbone:
    """A backbone ready for inference and how it was prepared."""

    module: nn.Module
    dtype: torch.dtype
    """dtype of the weights, and of the input the module expects."""
    autocast: str
    """precision of an autocast to run it under ("fp32": none)."""
    channels_last: bool
    folded: int
    compiled: bool

    def describe(self) -> str:
        parts = [f"weights {str(self.dtype).replace('torch.', '')}",
                 f"{self.folded} batch norms folded" if self.folded else "no batch norm folded"]
        if self.autocast != "fp32":
            parts.append(f"{self.autocast} autocast")
        if self.channels_last:
            parts.append("channels-last")
        if self.compiled:
            parts.append("torch.compile (frozen)")
        return ", ".join(parts)


def inference_backbone(backbone: nn.Module, *, precision: str = "fp32", channels_last: bool = False,
                       compile: bool = False, device: str | torch.device = "cpu", fold: bool = True) -> InferenceBackbone:
    """The backbone for inference (a new module: ``backbone`` itself is not changed)."""
    from facebone.eval.fastpath import _dtype

    device = torch.device(device)
    low = _dtype(precision)  # validates
    module, folded = fold_batchnorm(backbone) if fold else (copy.deepcopy(backbone).eval(), 0)  # copies
    module = module.to(device)
    dtype, autocast = torch.float32, "fp32"
    if low is torch.bfloat16 or (low is torch.float16 and device.type == "cuda"):
        dtype = low
        module = module.to(dtype)
    elif low is torch.float16:
        autocast = "fp16"
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    for p in module.parameters():
        p.requires_grad_(False)
    if compile:
        from facebone.eval.embedder import compile_frozen

        module = compile_frozen(module)
    return InferenceBackbone(module, dtype, autocast, channels_last, folded, bool(compile))


def run_backbone(net: InferenceBackbone, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """``net`` on a float batch ``x`` (N, 3, H, W) -> float32 (N, D)."""
    from facebone.eval.fastpath import autocast, to_input

    x = to_input(x.to(net.dtype), net.channels_last)
    with torch.inference_mode(), autocast(net.autocast, x.device):
        return net.module(x, **kwargs).float()


def inference_model(model: nn.Module, *, precision: str, channels_last: bool = False,
                    device: str | torch.device = "cpu") -> nn.Module:
    """A new module computing ``model`` for inference: a model with ``warp`` and ``backbone``
    (:class:`~facebone.model.face_model.FaceModel`) keeps its warp and gets the inference backbone;
    any other module is prepared whole. For the evaluators' embedder, which runs it under
    autocast: ``model`` itself is not changed."""
    if hasattr(model, "warp") and hasattr(model, "backbone"):
        from facebone.model.face_model import FaceModel

        net = inference_backbone(model.backbone, precision=precision, channels_last=channels_last, device=device)
        return FaceModel(copy.deepcopy(model.warp).eval().to(device), net.module).eval()
    return inference_backbone(model, precision=precision, channels_last=channels_last, device=device).module
