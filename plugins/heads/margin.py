"""Registers ``arcface``, ``cosface`` and ``subcenter`` (fixed additive margins).

The modules live in :mod:`facebone.plugins.heads.margin_model`, imported by the factories so
that plugin discovery does not import torch.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone import option
from facebone.plugins.heads import validate


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArcFaceOptions:
    """Options of ``arcface`` and ``subcenter``."""

    scale: float = option(64.0, "logit scale s (64 in the ArcFace paper, Deng et al., CVPR 2019)")
    margin: float = option(0.5, "additive angular margin m in radians, in [0, pi/2) (0.5 in the ArcFace paper)")
    easy_margin: bool = option(False, "apply the margin only where cos(theta) > 0 (no margin elsewhere) instead "
                                      "of the fallback")
    fallback: bool = option(True, "where theta + m > pi use s*(cos(theta) - m*sin(m)) (InsightFace's original "
                                  "ArcFace); false keeps s*cos(theta + m) there, as InsightFace's current "
                                  "CombinedMarginLoss")
    straight_through: bool = option(False, "add the margin outside autograd, as InsightFace's CombinedMarginLoss: "
                                           "same logits, gradient s for every cosine; with fallback = false it "
                                           "reproduces InsightFace exactly (default: the true gradient)")

    def __post_init__(self) -> None:
        validate.positive("scale", self.scale)
        validate.angular_margin("margin", self.margin)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CosFaceOptions:
    scale: float = option(64.0, "logit scale s (64 in the CosFace paper, Wang et al., CVPR 2018)")
    margin: float = option(0.4, "additive cosine margin m, in [0, 1] (0.40 as InsightFace arcface_torch and "
                                "AdaFace; the CosFace paper's best is 0.35)")

    def __post_init__(self) -> None:
        validate.positive("scale", self.scale)
        validate.in_range("margin", self.margin, 0.0, 1.0, closed_high=True)


def build_arcface(options: ArcFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.margin_model import ArcFace

    return ArcFace(options.scale, options.margin, easy_margin=options.easy_margin, fallback=options.fallback,
                   straight_through=options.straight_through)


def build_cosface(options: CosFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.margin_model import CosFace

    return CosFace(options.scale, options.margin)


def build_subcenter(options: ArcFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.heads.margin_model import SubcenterArcFace

    return SubcenterArcFace(options.scale, options.margin, easy_margin=options.easy_margin,
                            fallback=options.fallback, straight_through=options.straight_through)


def check_subcenter(options: ArcFaceOptions, experiment: Any) -> list[str]:
    """Sub-center ArcFace needs K > 1 centres per class: ``[classifier] subcenters = K``.

    Checked when the experiment has a ``[classifier]`` table; without one (a core that has no
    such table yet) the head is ArcFace on single centres.
    """
    k = validate.classifier_subcenters(experiment)
    if k is None:
        return []
    if k == "missing":
        return ["needs [classifier] key 'subcenters' = K > 1 (K centres per class; the paper uses K = 3)"]
    if isinstance(k, bool) or not isinstance(k, int) or k <= 1:
        return [f"needs [classifier] key 'subcenters' = K > 1 (K centres per class; the paper uses K = 3), got {k!r}"]
    return []


@facebone.hookimpl
def facebone_heads(registry):  # type: ignore[no-untyped-def]
    registry.add("arcface", build_arcface, options=ArcFaceOptions,
                 summary="ArcFace: additive angular margin s*cos(theta+m) (Deng et al., CVPR 2019; s 64, m 0.5)")
    registry.add("cosface", build_cosface, options=CosFaceOptions,
                 summary="CosFace: additive cosine margin s*(cos(theta)-m) (Wang et al., CVPR 2018; s 64, m 0.35-0.4)")
    registry.add("subcenter", build_subcenter, options=ArcFaceOptions, check=check_subcenter,
                 summary="Sub-center ArcFace: ArcFace on the max over K centres per class, needs [classifier] "
                         "subcenters = K (Deng et al., ECCV 2020; K 3, s 64, m 0.5)")
