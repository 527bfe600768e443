"""The objective: the loss as named terms, built from the experiment's ``[objective]`` table.

The objective kind's contract is in :mod:`facebone.contracts`. This module builds the
objective (and its frozen teacher, when its options name one) and holds what objective
plugins share: :func:`classification_terms` (embedding -> classifier -> head -> cross-entropy,
plus the head's own terms) and :func:`tap_outputs` (capture named submodules' outputs, e.g.
feature maps to distil).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

from facebone.errors import PluginError
from facebone.train.collectives import replicated


def classification_terms(embeddings: torch.Tensor, labels: torch.Tensor, *, classifier: Any,
                         head: nn.Module) -> dict[str, torch.Tensor]:
    """``{"ce": cross-entropy, **head.loss_terms(norms)}`` for this rank's ``embeddings (n, D)``."""
    cosine, labels_local, norms = classifier(embeddings, labels)
    with torch.autocast(cosine.device.type, enabled=False):  # margins and softmax in fp32 at least
        logits = head(cosine, labels_local, norms)
        terms = {"ce": classifier.cross_entropy(logits, labels_local)}
        extra = getattr(head, "loss_terms", None)
        if extra is not None:  # every rank computes these from the same global norms: count them once
            for name, value in extra(replicated(norms)).items():
                if name in terms:
                    raise PluginError(f"head {type(head).__name__}: loss term {name!r} clashes with the objective's")
                terms[name] = value
    return terms


@contextlib.contextmanager
def tap_outputs(model: nn.Module, names: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, ``captured[name]`` is the latest output of submodule ``name`` of ``model``
    (names as in the model itself: a DDP wrapper or frozen teacher around it is looked through)."""
    modules = dict(unwrap(model).named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        from facebone.plugin.options import suggest

        raise PluginError(f"no submodule {missing[0]!r} in {type(model).__name__}{suggest(missing[0], modules)}")
    captured: dict[str, torch.Tensor] = {}
    handles = [modules[n].register_forward_hook(_store(captured, n)) for n in names]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _store(captured: dict[str, torch.Tensor], name: str) -> Any:
    def hook(module: nn.Module, args: Any, output: Any) -> None:
        captured[name] = output[0] if isinstance(output, (tuple, list)) else output

    return hook


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself: out of a DDP (``.module``) wrapper, and out of a frozen teacher."""
    from facebone.train.teacher import FrozenTeacher

    model = getattr(model, "module", model)
    return model.model if isinstance(model, FrozenTeacher) else model


def teacher_source(spec: Any) -> str:
    """The ``teacher`` option of an objective spec ('' when it has none)."""
    return str(getattr(spec.options, "teacher", "") or "")


def build_objective(exp: Any, *, num_classes: int, device: torch.device | str = "cpu",
                    plugins: Any = None) -> tuple[nn.Module, nn.Module | None]:
    """``(objective, teacher)`` of an experiment: the ``[objective]`` component and, when its options
    name a ``teacher``, that model loaded frozen in eval mode (else None)."""
    from facebone.train.teacher import load_teacher

    spec = exp.objective
    objective = spec.build(num_classes=num_classes, embedding_size=exp.embedding_size, seed=exp.experiment.seed)
    source = teacher_source(spec)
    teacher = load_teacher(source, plugins=plugins).to(device) if source else None
    return objective.to(device), teacher
