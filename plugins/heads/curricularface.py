"""Registers ``curricularface`` (ArcFace target, hard negatives re-weighted by an EMA t;
Huang et al., CVPR 2020). The module lives in :mod:`facebone.plugins.heads.curricularface_model`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone import option
from facebone.plugins.heads import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class CurricularFaceOptions:
    scale: float = option(64.0, "logit scale s (64 in the CurricularFace paper, Huang et al., CVPR 2020)")
    margin: float = option(0.5, "additive angular margin m in radians, in [0, pi/2) (0.5 in the paper)")
    t_alpha: float = option(0.01, "EMA weight of each batch's mean target cosine in t, in (0, 1] (0.01 in the "
                                  "paper)")

    def __post_init__(self) -> None:
        validate.positive("scale", self.scale)
        validate.angular_margin("margin", self.margin)
        validate.momentum("t_alpha", self.t_alpha)


def build_curricularface(options: CurricularFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.curricularface_model import CurricularFace

    return CurricularFace(options.scale, options.margin, options.t_alpha)


@facebone.hookimpl
def facebone_heads(registry):  # type: ignore[no-untyped-def]
    registry.add("curricularface", build_curricularface, options=CurricularFaceOptions,
                 summary="CurricularFace: ArcFace target, hard negatives cos*(t+cos) with an EMA t "
                         "(Huang et al., CVPR 2020; m 0.5, s 64)")
