"""Registers ``combined`` (cos(m1*theta + m2) - m3) and ``sphereface`` (cos(m*theta), monotonic).

The modules live in :mod:`facebone.plugins.heads.combined_model`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import facebone
from facebone import option
from facebone.plugins.heads import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class CombinedOptions:
    scale: float = option(64.0, "logit scale s (64 in the ArcFace paper, Deng et al., CVPR 2019)")
    m1: float = option(1.0, "multiplicative angular margin, > 0 (the ArcFace paper's combined margins: "
                            "CM1 (1, 0.3, 0.2), CM2 (0.9, 0.4, 0.15))")
    m2: float = option(0.3, "additive angular margin in radians, in [0, pi) (CM1: 0.3)")
    m3: float = option(0.2, "additive cosine margin, in [0, 1] (CM1: 0.2)")
    interclass_filtering_threshold: float = option(
        0.0, "zero the non-target cosines above this value, in [0, 1); 0 disables (InsightFace arcface_torch)")
    monotonic: bool = option(False, "past m1*theta + m2 > pi continue with SphereFace's decreasing psi; false "
                                    "keeps cos(m1*theta + m2) as the ArcFace paper and InsightFace's MXNet code")

    def __post_init__(self) -> None:
        validate.positive("scale", self.scale)
        validate.positive("m1", self.m1)
        validate.in_range("m2", self.m2, 0.0, math.pi, high_name="pi")
        validate.in_range("m3", self.m3, 0.0, 1.0, closed_high=True)
        validate.in_range("interclass_filtering_threshold", self.interclass_filtering_threshold, 0.0, 1.0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SphereFaceOptions:
    scale: float = option(64.0, "logit scale s of the normalised form (64, InsightFace arcface_paddle's SphereFace "
                                "config)")
    margin: float = option(1.35, "multiplicative angular margin m >= 1 (1.35: InsightFace arcface_paddle with "
                                 "normalised features; the A-Softmax paper, Liu et al. CVPR 2017, uses 4 with "
                                 "feature_scale and annealing)")
    feature_scale: bool = option(False, "scale by the embedding norm ||x|| instead of s (the original A-Softmax)")
    anneal_base: float = option(0.0, "annealing start lambda, 0 disables (the paper: 1000); the target becomes "
                                     "(lambda*cos + psi)/(1 + lambda)")
    anneal_gamma: float = option(0.12, "annealing rate: lambda = base*(1 + gamma*step)^-power (the paper: 0.12)")
    anneal_power: float = option(1.0, "annealing power (the paper: 1)")
    anneal_min: float = option(5.0, "smallest lambda of the annealing (the paper: 5)")

    def __post_init__(self) -> None:
        validate.positive("scale", self.scale)
        if not self.margin >= 1:
            raise ValueError(f"key 'margin' must be >= 1 (cos(m*theta) with m < 1 lowers no logit), got {self.margin}")
        for key in ("anneal_base", "anneal_gamma", "anneal_power", "anneal_min"):
            validate.non_negative(key, getattr(self, key))


def build_combined(options: CombinedOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.combined_model import CombinedMargin

    return CombinedMargin(options.scale, options.m1, options.m2, options.m3,
                          interclass_filtering_threshold=options.interclass_filtering_threshold,
                          monotonic=options.monotonic)


def build_sphereface(options: SphereFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.combined_model import SphereFace

    return SphereFace(options.scale, options.margin, feature_scale=options.feature_scale,
                      anneal_base=options.anneal_base, anneal_gamma=options.anneal_gamma,
                      anneal_power=options.anneal_power, anneal_min=options.anneal_min)


@facebone.hookimpl
def facebone_heads(registry):  # type: ignore[no-untyped-def]
    registry.add("combined", build_combined, options=CombinedOptions,
                 summary="Combined margin s*(cos(m1*theta+m2)-m3), all three applied (ArcFace paper, Deng et al., "
                         "CVPR 2019; CM1 = 1, 0.3, 0.2)")
    registry.add("sphereface", build_sphereface, options=SphereFaceOptions,
                 summary="SphereFace (A-Softmax): multiplicative margin psi(m*theta), monotonic (Liu et al., "
                         "CVPR 2017; normalised s 64, m 1.35 as InsightFace)")
