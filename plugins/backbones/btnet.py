"""Registers ``btnet18/34/50/100/200``: an iResNet trunk with low-resolution branches (BTNet, BMVC 2023).

One module and one checkpoint hold the trunk (InsightFace iresnet keys) and every branch;
inputs are routed to a path by their native size. The model lives in
:mod:`facebone.plugins.backbones.btnet_model` (imported by the factory: discovery stays fast).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

import facebone
from facebone.errors import ConfigError
from facebone.plugins.backbones.btnet_routing import branch_problems

DEPTHS = (18, 34, 50, 100, 200)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BTNetOptions:
    """Options of every ``btnetN`` backbone."""

    branches: list[int] = facebone.option(
        default_factory=lambda: [28, 14, 7],
        help="branch input sizes; each must be the trunk size / 2, 4, 8 or 16 (56, 28, 14, 7 at 112)")
    indicator: Literal["max", "avg", "min"] = facebone.option(
        "max", "resolution indicator of an h x w input: max(h, w), floor((h + w) / 2) or min(h, w)")
    rule: Literal["ceil", "floor", "near"] = facebone.option(
        "ceil", "routing rule: smallest served size >= indicator, largest <= it, or the nearest (ties: smaller)")
    resize_filter: Literal["bicubic", "bilinear", "area", "nearest"] = facebone.option(
        "bicubic", "filter that resizes an input to its path's size (antialiased for bicubic/bilinear; "
                   "bicubic is Pillow's default, which the original's SurvFace script used)")
    shared_bn: bool = facebone.option(
        False, "branches run the trunk's own BN layers with their running statistics (false: each branch "
               "owns a copy of the trunk continuation's BN layers, as the original's released weights)")
    pooling: Literal["flatten", "gap", "gwp"] = facebone.option(
        "flatten", "final map -> vector: flatten (InsightFace, the original), gap or gwp")
    dropout: float = facebone.option(0.0, "dropout probability before the final linear layer")
    width: int = facebone.option(64, "channels of the first stage (stages are width x 1, 2, 4, 8); 64 is InsightFace")

    def __post_init__(self) -> None:
        if not self.branches:
            raise ValueError("key 'branches' needs at least one branch size (e.g. [28, 14, 7])")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"key 'dropout' must be in [0, 1), got {self.dropout}")
        if self.width < 1:
            raise ValueError(f"key 'width' must be a positive integer, got {self.width}")


def check_btnet(options: BTNetOptions, experiment: dict) -> list[str]:
    """Validation: branch sizes that end at the trunk's final map, and the identity warp
    (routing reads the native input size)."""
    size = (experiment.get("data") or {}).get("image_size", 112)
    name = (experiment.get("backbone") or {}).get("type", "btnet")
    if not isinstance(size, int) or size % 16 or size < 16:
        return [f"[data] key 'image_size' = {size}: {name} needs a multiple of 16 (e.g. 112)"]
    problems = [f"key 'branches': {p}" for p in branch_problems(size, list(options.branches))]
    warp = str((experiment.get("warp") or {}).get("type", "cartesian")).split(":")[-1]
    if warp != "cartesian":
        problems.append(f"[warp] type: {name} routes inputs by their native size; it needs the identity warp "
                        f"\"cartesian\" (got \"{warp}\")")
    return problems


def build_btnet(depth: int, options: BTNetOptions, *, embedding_size: int = 512, image_size: int = 112,
                **runtime: Any):  # type: ignore[no-untyped-def]
    """Factory: ``build_btnet(50, options, embedding_size=512, image_size=112)``."""
    problems = branch_problems(image_size, list(options.branches)) if image_size % 16 == 0 and image_size >= 16 \
        else [f"needs an image size that is a multiple of 16 (e.g. 112), got {image_size}"]
    if problems:
        raise ConfigError(f"[backbone] btnet{depth}: " + "; ".join(problems))
    from facebone.plugins.backbones.btnet_model import BTNet
    from facebone.plugins.backbones.iresnet_model import DEPTHS as LAYERS

    return BTNet(LAYERS[depth], embedding_size=embedding_size, image_size=image_size, branches=options.branches,
                 shared_bn=options.shared_bn, indicator=options.indicator, rule=options.rule,
                 resize_filter=options.resize_filter, pooling=options.pooling, dropout=options.dropout,
                 width=options.width)


@facebone.hookimpl
def facebone_backbones(registry):  # type: ignore[no-untyped-def]
    for depth in DEPTHS:
        registry.add(f"btnet{depth}", functools.partial(build_btnet, depth), options=BTNetOptions,
                     summary=f"BTNet on iResNet-{depth}: one trunk + low-resolution branches, routed by input size",
                     check=check_btnet)
