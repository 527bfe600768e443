"""Inference versions of a backbone: batch norm folded into the layer before it, weights in the
asked precision, channels-last memory, optionally a frozen compiled graph.

* :func:`fold_batchnorm`: every ``BatchNorm`` whose input is the output of a convolution or a
  linear layer used by nothing else is folded into that layer's weight and bias (exact up to
  rounding). Found on the torch.fx graph, so any traceable backbone gets it; in a backbone that
  fx cannot trace (data-dependent control flow, such as routing by input size), inside each
  part that it can trace, and the pairs adjacent in an ``nn.Sequential``. The folded copy is
  checked against the original on a random batch before it is used.
* :func:`inference_backbone`: the folded backbone in eval mode with weights in bf16 (``precision
  = "bf16"``) or fp16 (on CUDA), so no per-call casts of weights remain; on the CPU, fp16 keeps
  fp32 weights under autocast (CPUs have no fast fp16 convolutions), and so does a backbone that
  routes by input size (``input_sizes``: it resizes inputs inside, which not every kernel does
  in bf16).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
FOLDS_INTO = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


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


def _fold_in_place(module: nn.Module) -> int:
    """Fold, in place, the conv/linear -> BN pairs that ``module``'s torch.fx graph shows (each
    layer and BN called once, the layer's output used by the BN alone): the layer gets the folded
    weights, the BN becomes ``nn.Identity``; the module keeps its class, code and attributes.
    Raises when fx cannot trace ``module``."""
    from collections import Counter

    from torch import fx

    graph = fx.Tracer().trace(module)
    calls = Counter(node.target for node in graph.nodes if node.op == "call_module")
    modules = dict(module.named_modules())
    folded = 0
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), BATCHNORMS):
            continue
        prev = node.args[0] if node.args else None
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        layer, bn = modules[prev.target], modules[node.target]
        if calls[prev.target] != 1 or calls[node.target] != 1 or not _folds(layer, bn):
            continue
        module.set_submodule(prev.target, _fold(layer, bn))
        module.set_submodule(node.target, nn.Identity())
        folded += 1
    return folded


def _fold_tree(module: nn.Module) -> int:
    """Fold the whole module on its fx graph; where fx cannot trace it, inside each child, and
    the conv-BN pairs adjacent in an ``nn.Sequential``. In place; returns how many were folded."""
    try:
        return _fold_in_place(module)
    except Exception:  # noqa: BLE001 - untraceable: go one level down
        pass
    folded = fold_sequential_batchnorm(module, recurse=False)
    for child in module.children():
        if child is not None and not isinstance(child, (*FOLDS_INTO, *BATCHNORMS)):
            folded += _fold_tree(child)
    return folded


def _served_sizes(model: nn.Module) -> list[tuple[int, int]]:
    sizes = getattr(model, "input_sizes", None) or [getattr(model, "input_size", None)]
    out = []
    for size in sizes:
        if size is not None:
            out.append((int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1])))
    return out


def _same_output(a: nn.Module, b: nn.Module, sizes: list[tuple[int, int]]) -> bool:
    """Whether two backbones agree on a small random batch at every size (cosine > 0.9999)."""
    ref = next(iter(a.parameters()), None)
    gen = torch.Generator().manual_seed(0)
    for h, w in sizes:
        x = (torch.rand(2, 3, h, w, generator=gen) * 2 - 1).to(ref.device if ref is not None else "cpu")
        try:
            with torch.no_grad():
                ya, yb = a(x).float(), b(x).float()
        except Exception:  # noqa: BLE001 - the folded copy fails where the original runs: do not use it
            return False
        if ya.shape != yb.shape or not bool(torch.nn.functional.cosine_similarity(
                ya.reshape(len(ya), -1), yb.reshape(len(yb), -1)).min() > 0.9999):
            return False
    return True


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """``(folded copy of model, number of batch norms folded)``; ``model`` itself is never
    changed, and the copy keeps its class and attributes. The copy is checked against the model
    on a random batch at every size it serves (``input_sizes``, else ``input_size``) and dropped
    for an unfolded copy (0) if they disagree: a layer shared by several paths (a routing
    backbone's trunk) may be followed by a BN on one path only."""
    folded_model = copy.deepcopy(model).eval()
    folded = _fold_tree(folded_model)
    if folded:
        sizes = _served_sizes(model)
        reference = copy.deepcopy(model).eval()  # the model itself keeps its mode and statistics
        if sizes and not _same_output(reference, folded_model, sizes):
            return reference, 0
    return folded_model, folded


def fold_sequential_batchnorm(model: nn.Module, recurse: bool = True) -> int:
    """Fold, in place, every batch norm that directly follows a convolution or linear layer inside
    an ``nn.Sequential`` (the one case visible without tracing); returns how many were folded.
    ``recurse=False``: only ``model`` itself, if it is a Sequential."""
    folded = 0
    seqs = [m for m in model.modules() if isinstance(m, nn.Sequential)] if recurse else \
        ([model] if isinstance(model, nn.Sequential) else [])
    for seq in seqs:
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
    routes = getattr(backbone, "input_sizes", None) is not None
    if routes and low is not None:  # it resizes inputs itself, which some kernels cannot do in bf16
        autocast = precision
    elif low is torch.bfloat16 or (low is torch.float16 and device.type == "cuda"):
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
