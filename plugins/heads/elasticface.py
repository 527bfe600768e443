"""Registers ``elasticface_arc`` and ``elasticface_cos`` (per-sample margins m_i ~ N(m, sigma) from a
head-owned generator seeded from the run's seed; Boutros et al., CVPRW 2022). The modules live in
:mod:`facebone.plugins.heads.elasticface_model`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone import option
from facebone.plugins.heads import validate


def _check(options: Any) -> None:
    validate.positive("scale", options.scale)
    validate.non_negative("margin", options.margin)
    if not options.sigma >= 0:
        raise ValueError(f"key 'sigma' must be >= 0 (a standard deviation), got {options.sigma}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ElasticArcOptions:
    scale: float = option(64.0, "logit scale s (64 in the ElasticFace paper, Boutros et al., CVPRW 2022)")
    margin: float = option(0.5, "mean m of the angular margins, radians, >= 0 (0.5 in the paper)")
    sigma: float = option(0.05, "standard deviation of the margins, >= 0 (0.05 in the paper's ElasticFace-Arc "
                                "config; 0 is ArcFace without fallback)")

    def __post_init__(self) -> None:
        _check(self)
        validate.angular_margin("margin", self.margin)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ElasticCosOptions:
    scale: float = option(64.0, "logit scale s (64 in the ElasticFace paper, Boutros et al., CVPRW 2022)")
    margin: float = option(0.35, "mean m of the cosine margins, in [0, 1] (0.35 in the paper)")
    sigma: float = option(0.05, "standard deviation of the margins, >= 0 (0.05 in the paper's ElasticFace-Cos "
                                "config; 0 is CosFace)")

    def __post_init__(self) -> None:
        _check(self)
        validate.in_range("margin", self.margin, 0.0, 1.0, closed_high=True)


def build_elasticface_arc(options: ElasticArcOptions, *, seed: int = 0, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.elasticface_model import ElasticArcFace

    return ElasticArcFace(options.scale, options.margin, options.sigma, seed=seed)


def build_elasticface_cos(options: ElasticCosOptions, *, seed: int = 0, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.elasticface_model import ElasticCosFace

    return ElasticCosFace(options.scale, options.margin, options.sigma, seed=seed)


@facebone.hookimpl
def facebone_heads(registry):  # type: ignore[no-untyped-def]
    registry.add("elasticface_arc", build_elasticface_arc, options=ElasticArcOptions,
                 summary="ElasticFace-Arc: s*cos(theta+m_i), m_i ~ N(m, sigma) per sample, seeded (Boutros et al., "
                         "CVPRW 2022; m 0.5, sigma 0.05, s 64)")
    registry.add("elasticface_cos", build_elasticface_cos, options=ElasticCosOptions,
                 summary="ElasticFace-Cos: s*(cos(theta)-m_i), m_i ~ N(m, sigma) per sample, seeded (Boutros et al., "
                         "CVPRW 2022; m 0.35, sigma 0.05, s 64)")
