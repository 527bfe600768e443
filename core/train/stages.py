"""A stage's starting point, applied to the built training modules in one order:
``init_from`` (model weights), ``classifier_from`` (class centres), then ``freeze``.

:func:`preflight` runs the same checks before anything is written (``facebone run`` calls it
before creating the run directory, ``facebone check`` to report what trains): it builds the
model on PyTorch's meta device where the backbone allows it, so it costs no memory, and reads
only the checkpoint's header.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from facebone.errors import DataError, PluginError
from facebone.train.freeze import FreezeSummary, apply_freeze
from facebone.train.init import compare_init, init_classifier, init_model, resolve_checkpoint


def freeze_patterns(train: Any) -> list[str]:
    """``[train] freeze``, plus the classifier when ``classifier_frozen``."""
    return list(train.freeze) + (["classifier.weight"] if train.classifier_frozen else [])


def prepare_stage(exp: Any, modules: dict[str, nn.Module], *, log: Callable[[str], None] = print) -> FreezeSummary:
    """Load ``init_from`` and ``classifier_from`` into ``modules`` (``model``, ``classifier``, ``head``,
    ``objective``), then freeze; returns what trains."""
    train, where = exp.train, f"{exp.source} [train]"
    if train.init_from:
        init_model(modules["model"], resolve_checkpoint(train.init_from, f"{where} init_from"),
                   backbone=exp.backbone.type, strict=train.init_strict, log=log, where=f"{where} init_from")
    if train.classifier_from:
        init_classifier(modules["classifier"], resolve_checkpoint(train.classifier_from, f"{where} classifier_from"),
                        log=log)
    return apply_freeze(modules, freeze_patterns(train), bn_policy=train.freeze_bn, where=f"{where} freeze")


class _Centres(nn.Module):
    """Stands in for the classifier in :func:`preflight` (its one parameter, on the meta device)."""

    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, dim, device="meta"))


def _on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    try:
        with torch.device("meta"):
            return build()
    except (PluginError, RuntimeError, NotImplementedError, ValueError):
        return build()  # a factory that computes with its tensors: build it for real


def preflight(exp: Any, *, num_classes: int | None = None) -> FreezeSummary:
    """Check ``init_from`` keys, ``classifier_from`` and the freeze patterns without writing anything.

    The counts include the classifier only when ``num_classes`` is given.
    """
    from facebone.model.build import build_model

    classes = num_classes or 2
    model = _on_meta(lambda: build_model(exp))
    head = _on_meta(lambda: exp.head.build(num_classes=classes, embedding_size=exp.embedding_size,
                                           seed=exp.experiment.seed))
    objective = _on_meta(lambda: exp.objective.build(num_classes=classes, embedding_size=exp.embedding_size,
                                                     seed=exp.experiment.seed))
    rows = classes * exp.classifier.subcenters
    modules: dict[str, nn.Module] = {"model": model, "classifier": _Centres(rows, exp.embedding_size),
                                     "head": head, "objective": objective}
    train, where = exp.train, f"{exp.source} [train]"
    if train.init_from:
        path = resolve_checkpoint(train.init_from, f"{where} init_from")
        compare_init(model.state_dict(), path, backbone=exp.backbone.type, strict=train.init_strict,
                     shapes_only=True, where=f"{where} init_from",
                     complete=getattr(model.backbone, "complete_state_dict", None))
    if train.classifier_from:
        _check_classifier_source(exp, resolve_checkpoint(train.classifier_from, f"{where} classifier_from"),
                                 num_classes)
    summary = apply_freeze(modules, freeze_patterns(train), bn_policy=train.freeze_bn, where=f"{where} freeze")
    if num_classes is None:
        summary.total -= rows * exp.embedding_size
        summary.trainable -= rows * exp.embedding_size * int(modules["classifier"].weight.requires_grad)
        summary.note = "without the classifier: the training set was not read"
    return summary


def _check_classifier_source(exp: Any, path: Any, num_classes: int | None) -> None:
    from facebone.train.init import read_shapes

    shapes, _ = read_shapes(path)
    weight = shapes.get("classifier.weight")
    if weight is None:
        raise DataError(f"[train] classifier_from {path}: the checkpoint holds no classifier (no classifier.weight)")
    rows, dim = weight.shape
    if dim != exp.embedding_size or (num_classes is not None and rows != num_classes * exp.classifier.subcenters):
        need = f"{num_classes * exp.classifier.subcenters} x " if num_classes is not None else ""
        raise DataError(f"[train] classifier_from {path}: holds {rows} x {dim} centres, this experiment needs "
                        f"{need}{exp.embedding_size}-D centres")
