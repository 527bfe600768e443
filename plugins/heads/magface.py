"""Registers ``magface`` (magnitude-aware margin plus the regulariser lambda_g*g(a) as the loss
term ``magface_g``; Meng et al., CVPR 2021). The module lives in
:mod:`facebone.plugins.heads.magface_model`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone import option
from facebone.plugins.heads import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class MagFaceOptions:
    scale: float = option(64.0, "logit scale s (64 in the MagFace paper, Meng et al., CVPR 2021)")
    l_a: float = option(10.0, "lower bound of the magnitude a = clamp(||x||, l_a, u_a), > 0 (10 published)")
    u_a: float = option(110.0, "upper bound of the magnitude, > l_a (110 published)")
    l_m: float = option(0.45, "margin at a = l_a in radians, in [0, pi/2) (0.45 published)")
    u_m: float = option(0.8, "margin at a = u_a in radians, in [l_m, pi/2) (0.8 published)")
    lambda_g: float = option(35.0, "weight of the regulariser g(a) = a/u_a^2 + 1/a, >= 0 (35 in the published run "
                                   "script, 20 the trainer default; the paper's guarantee needs lambda_g >= "
                                   "s*k*u_a^2*l_a^2/(u_a^2 - l_a^2), k = (u_m - l_m)/(u_a - l_a), 22.6 here)")
    easy_margin: bool = option(True, "margin only where cos(theta) > 0, as the reference MagLinear; false uses "
                                     "ArcFace's fallback past theta + m > pi")

    def __post_init__(self) -> None:
        validate.positive("scale", self.scale)
        validate.positive("l_a", self.l_a)
        if not self.l_a < self.u_a:
            raise ValueError(f"key 'l_a' ({self.l_a}) must be smaller than key 'u_a' ({self.u_a})")
        validate.angular_margin("l_m", self.l_m)
        validate.angular_margin("u_m", self.u_m)
        if not self.l_m <= self.u_m:
            raise ValueError(f"key 'l_m' ({self.l_m}) must not exceed key 'u_m' ({self.u_m}): the margin grows "
                             "with the magnitude")
        validate.non_negative("lambda_g", self.lambda_g)


def min_lambda_g(options: MagFaceOptions) -> float:
    """The paper's lower bound on lambda_g for a unique optimal magnitude (MagFace trainer's check)."""
    k = (options.u_m - options.l_m) / (options.u_a - options.l_a)
    return options.scale * k * options.u_a ** 2 * options.l_a ** 2 / (options.u_a ** 2 - options.l_a ** 2)


def build_magface(options: MagFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.magface_model import MagFace

    return MagFace(options.scale, options.l_a, options.u_a, options.l_m, options.u_m, options.lambda_g,
                   easy_margin=options.easy_margin)


@facebone.hookimpl
def facebone_heads(registry):  # type: ignore[no-untyped-def]
    registry.add("magface", build_magface, options=MagFaceOptions,
                 summary="MagFace: margin m(a) rising with the feature magnitude, plus the loss term "
                         "lambda_g*g(a) (Meng et al., CVPR 2021; l_a 10, u_a 110, l_m 0.45, u_m 0.8, s 64)")
