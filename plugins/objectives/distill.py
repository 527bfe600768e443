"""Registers ``distill``: classification plus MSE towards a frozen teacher's embeddings and features.

With ``features`` it also matches intermediate outputs, named as submodules of the model
(``"backbone.layer2.0"``, or ``"student_name=teacher_name"`` where they differ), which is what
BTNet's second stage distils (CE + 0.5 * (MSE features + MSE embeddings)).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone import option


@dataclasses.dataclass(frozen=True, kw_only=True)
class DistillOptions:
    teacher: str = option(help="the frozen teacher: a run directory or its checkpoint file")
    ce_weight: float = option(1.0, "weight of the classification cross-entropy (0: distillation only)")
    embedding_weight: float = option(1.0, "weight of the MSE between student and teacher embeddings")
    normalize: bool = option(False, "compare L2-normalised embeddings instead of raw ones")
    features: tuple[str, ...] = option((), "submodules whose outputs are matched too: 'name' (the same in both "
                                           "models) or 'student=teacher', e.g. ['backbone.layer2.0']")
    feature_weight: float = option(1.0, "weight of the MSE of each matched feature output")

    def __post_init__(self) -> None:
        if not self.teacher.strip():
            raise ValueError("key 'teacher' must name a run directory or checkpoint")
        for key in ("ce_weight", "embedding_weight", "feature_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}' must be >= 0, got {getattr(self, key)}")
        for item in self.features:
            if not item or item.count("=") > 1 or any(not part.strip() for part in item.split("=")):
                raise ValueError(f"key 'features': {item!r} is not 'name' or 'student=teacher'")


def build_distill(options: DistillOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.objectives.modules import Distill

    pairs = [tuple(item.split("=")) if "=" in item else (item, item) for item in options.features]
    return Distill(ce_weight=options.ce_weight, embedding_weight=options.embedding_weight,
                   normalize=options.normalize, features=pairs, feature_weight=options.feature_weight)


@facebone.hookimpl
def facebone_objectives(registry):  # type: ignore[no-untyped-def]
    registry.add("distill", build_distill, options=DistillOptions,
                 summary="classification plus weighted MSE towards a frozen teacher's embeddings (and features)")
