"""The registration hooks a facebone plugin may implement (one per component kind)."""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("facebone")


@hookspec
def facebone_backbones(registry):  # type: ignore[no-untyped-def]
    """Add backbones: ``registry.add(name, factory, options=..., summary=...)``."""


@hookspec
def facebone_heads(registry):  # type: ignore[no-untyped-def]
    """Add margin heads."""


@hookspec
def facebone_warps(registry):  # type: ignore[no-untyped-def]
    """Add input warps."""


@hookspec
def facebone_evaluators(registry):  # type: ignore[no-untyped-def]
    """Add evaluation protocols."""


@hookspec
def facebone_objectives(registry):  # type: ignore[no-untyped-def]
    """Add training objectives (the loss as named terms)."""


HOOK_KIND = {
    "facebone_backbones": "backbone",
    "facebone_heads": "head",
    "facebone_warps": "warp",
    "facebone_evaluators": "evaluator",
    "facebone_objectives": "objective",
}
