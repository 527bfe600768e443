"""Registers ``classification``, the default objective: embedding -> classifier -> head -> cross-entropy."""
from __future__ import annotations

from typing import Any

import facebone


def build_classification(options: None, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.objectives.modules import Classification

    return Classification()


@facebone.hookimpl
def facebone_objectives(registry):  # type: ignore[no-untyped-def]
    registry.add("classification", build_classification,
                 summary="cross-entropy of the margin head's logits (plus the head's own loss terms)")
