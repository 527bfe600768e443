"""Implementation of the ``btnet_distill`` objective (imported lazily by its hook module)."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from facebone.errors import ConfigError


def _inner(model: nn.Module) -> nn.Module:
    """The model itself, out of a DDP wrapper (``.module``) or a frozen teacher (``.model``)."""
    model = getattr(model, "module", model)
    inner = getattr(model, "model", None)
    return inner if isinstance(inner, nn.Module) and not hasattr(model, "backbone") else model


@contextlib.contextmanager
def tapped(model: nn.Module, names: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """``captured[name]``: the latest output of submodule ``name`` of ``model`` within the block."""
    modules = dict(_inner(model).named_modules())
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        if name not in modules:
            raise ConfigError(f"btnet_distill: the model has no submodule {name!r}")

        def hook(module: nn.Module, args: Any, output: Any, name: str = name) -> None:
            captured[name] = output

        handles.append(modules[name].register_forward_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


class BTNetDistill(nn.Module):
    """``forward(batch, *, model, classifier, head, teacher) -> {"28/ce": .., "28/feature": .., ...}``."""

    def __init__(self, options: Any):
        super().__init__()
        self.options = options

    def _resize(self, images: torch.Tensor, r: int) -> torch.Tensor:
        o = self.options
        kwargs: dict[str, Any] = {} if o.resize_filter in ("nearest", "area") else {
            "align_corners": False, "antialias": o.antialias}
        return F.interpolate(images, size=(r, r), mode=o.resize_filter, **kwargs)

    def forward(self, batch: Any, *, model: nn.Module, classifier: Any, head: nn.Module,
                teacher: nn.Module | None = None) -> dict[str, torch.Tensor]:
        if teacher is None:
            raise ConfigError("btnet_distill needs a teacher (the stage-1 trunk)")
        o = self.options
        student = _inner(model).backbone
        sizes = list(o.branches) or list(student.branch_sizes)
        stages = {r: student.branches[str(r)].stage for r in sizes}
        images, labels = batch.images, batch.labels
        names = sorted({f"backbone.layer{s}.0" for s in stages.values()})
        with torch.no_grad(), tapped(teacher, names) as targets:
            target_emb = teacher(images).float()
        terms: dict[str, torch.Tensor] = {}
        for r in sizes:
            name = f"backbone.branches.{r}.layer{stages[r]}.0"
            with tapped(model, [name]) as got:
                emb = model(self._resize(images, r), branch=r).float()
            cosine, labels_local, norms = classifier(emb, labels)
            logits = head(cosine, labels_local, norms)
            terms[f"{r}/ce"] = o.ce_weight * classifier.cross_entropy(logits, labels_local)
            for key, value in getattr(head, "loss_terms", lambda n: {})(norms).items():
                terms[f"{r}/{key}"] = value
            feature = got[name].float()
            target = targets[f"backbone.layer{stages[r]}.0"].float()
            terms[f"{r}/feature"] = o.kd_weight * o.feature_weight * F.mse_loss(feature, target)
            terms[f"{r}/embedding"] = o.kd_weight * o.embedding_weight * F.mse_loss(emb, target_emb)
        return terms
