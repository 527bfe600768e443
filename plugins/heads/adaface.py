"""Registers ``adaface`` (quality-adaptive margin from the feature norm; Kim et al., CVPR 2022).

The module lives in :mod:`facebone.plugins.heads.adaface_model` (its docstring states the formula,
the state and where the global-batch statistics differ from the reference code).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone import option
from facebone.plugins.heads import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdaFaceOptions:
    scale: float = option(64.0, "logit scale s (64 in the AdaFace paper, Kim et al., CVPR 2022)")
    margin: float = option(0.4, "margin m, in [0, pi/2) (0.4 in the paper's README and published runs; the "
                                "reference CLI default is 0.5)")
    h: float = option(0.333, "how far the norm moves the margin, in [0, 1] (0.333 published; h = 0 is CosFace(m), "
                             "the reference CLI default)")
    t_alpha: float = option(0.01, "EMA weight of each batch's norm mean and std, in (0, 1] (0.01 published)")

    def __post_init__(self) -> None:
        validate.positive("scale", self.scale)
        validate.angular_margin("margin", self.margin)
        validate.in_range("h", self.h, 0.0, 1.0, closed_high=True)
        validate.momentum("t_alpha", self.t_alpha)


def build_adaface(options: AdaFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.adaface_model import AdaFace

    return AdaFace(options.scale, options.margin, options.h, options.t_alpha)


@facebone.hookimpl
def facebone_heads(registry):  # type: ignore[no-untyped-def]
    registry.add("adaface", build_adaface, options=AdaFaceOptions,
                 summary="AdaFace: norm-adaptive margin between ArcFace and CosFace, EMA norm statistics "
                         "(Kim et al., CVPR 2022; m 0.4, h 0.333, s 64, t_alpha 0.01)")
