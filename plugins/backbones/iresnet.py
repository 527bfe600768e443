"""Registers ``iresnet18/34/50/100/200`` (InsightFace-compatible iResNet, flatten/GAP/GWP pooling).

The implementation lives in :mod:`facebone.plugins.backbones.iresnet_model`, imported by
the factory so that plugin discovery does not import torch.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

import facebone
from facebone.errors import ConfigError
from facebone.plugins.backbones.checks import check_image_size

DEPTHS = (18, 34, 50, 100, 200)


@dataclasses.dataclass(frozen=True, kw_only=True)
class IResNetOptions:
    """Options of every ``iresnetN`` backbone."""

    pooling: Literal["flatten", "gap", "gwp"] = facebone.option(
        "flatten", "final map -> vector: flatten (InsightFace), gap (average) or gwp (Gaussian-weighted average "
                   "as in the GWP paper's code, IJCB 2024; its net also sets stem7x7 = true)")
    dropout: float = facebone.option(0.0, "dropout probability before the final linear layer")
    width: int = facebone.option(64, "channels of the first stage (stages are width x 1, 2, 4, 8); 64 is InsightFace")
    stem7x7: bool = facebone.option(False, "7x7 stem convolution (the GWP paper's registered net) instead of 3x3")

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"key 'dropout' must be in [0, 1), got {self.dropout}")
        if self.width < 1:
            raise ValueError(f"key 'width' must be a positive integer, got {self.width}")


def build_iresnet(depth: int, options: IResNetOptions, *, embedding_size: int = 512, image_size: int = 112,
                  **runtime: Any):  # type: ignore[no-untyped-def]
    """Factory: ``build_iresnet(50, options, embedding_size=512, image_size=112)``."""
    if image_size % 16 or image_size < 16:
        raise ConfigError(f"[data] key 'image_size' = {image_size}: iresnet{depth} needs a multiple of 16 (e.g. 112)")
    from facebone.plugins.backbones.iresnet_model import iresnet

    return iresnet(depth, embedding_size=embedding_size, image_size=image_size, pooling=options.pooling,
                   dropout=options.dropout, width=options.width, stem7x7=options.stem7x7)


@facebone.hookimpl
def facebone_backbones(registry):  # type: ignore[no-untyped-def]
    for depth in DEPTHS:
        registry.add(f"iresnet{depth}", functools.partial(build_iresnet, depth), options=IResNetOptions,
                     summary=f"iResNet-{depth} (ArcFace/InsightFace-compatible; flatten, GAP or GWP pooling)",
                     check=check_image_size)
