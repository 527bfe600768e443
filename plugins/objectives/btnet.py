"""Registers ``btnet_distill``: BTNet's stage 2, every branch distilled from the frozen trunk at once.

For each branch ``r`` of the ``btnet`` student the batch is downscaled to ``r`` x ``r``; the loss
is ``CE(branch embedding) + kd_weight * (feature_weight * MSE(branch implant map, teacher map) +
embedding_weight * MSE(branch embedding, teacher embedding))`` (research/btnet.md §2.3: 1, 0.5,
1, 1), the teacher being the stage-1 trunk in eval mode on the full-size batch. The terms are
logged per branch (``28/ce``, ``28/feature``, ``28/embedding``, ...).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

import facebone
from facebone import option


@dataclasses.dataclass(frozen=True, kw_only=True)
class BTNetDistillOptions:
    """Options of ``btnet_distill``."""

    teacher: str = option(help="the frozen trunk: the stage-1 run directory or its checkpoint file")
    branches: list[int] = option(default_factory=list, help="branches to train ([]: every branch of the backbone)")
    ce_weight: float = option(1.0, "weight of each branch's classification cross-entropy")
    kd_weight: float = option(0.5, "weight of the distillation terms (the original's kd_loss_weight)")
    feature_weight: float = option(1.0, "weight of the MSE between the branch's and the trunk's implant-point maps")
    embedding_weight: float = option(1.0, "weight of the MSE between the branch's and the trunk's raw embeddings")
    resize_filter: Literal["bilinear", "bicubic", "area", "nearest"] = option(
        "bilinear", "filter that downscales the batch to each branch's size")
    antialias: bool = option(False, "antialias that downscale (false: the original's torchvision tensor resize)")

    def __post_init__(self) -> None:
        if not self.teacher.strip():
            raise ValueError("key 'teacher' must name the stage-1 run directory or checkpoint")
        for key in ("ce_weight", "kd_weight", "feature_weight", "embedding_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}' must be >= 0, got {getattr(self, key)}")


def check_btnet_distill(options: BTNetDistillOptions, experiment: dict) -> list[str]:
    """The student must be a btnet and the asked branches its own."""
    backbone = experiment.get("backbone") or {}
    name = str(backbone.get("type", "")).split(":")[-1]
    if not name.startswith("btnet"):
        return [f"btnet_distill trains the branches of a btnet backbone; [backbone] type is {name!r}"]
    have = list(backbone.get("branches", [28, 14, 7]))
    missing = [r for r in options.branches if r not in have]
    return [f"key 'branches': {missing} are not branches of the backbone ({have})"] if missing else []


def build_btnet_distill(options: BTNetDistillOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.objectives.btnet_distill import BTNetDistill

    return BTNetDistill(options)


@facebone.hookimpl
def facebone_objectives(registry):  # type: ignore[no-untyped-def]
    registry.add("btnet_distill", build_btnet_distill, options=BTNetDistillOptions, check=check_btnet_distill,
                 summary="BTNet stage 2: each branch on the downscaled batch, CE + 0.5 x (MSE implant map + "
                         "MSE embedding) to the frozen trunk")
