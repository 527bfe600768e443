"""RoI Tanh warps (Lin et al., "RoI Tanh-polar Transformer Network", arXiv 2102.02717).

Registers ``roi_tanh``, ``roi_tanh_polar`` and ``roi_tanh_circular``, identical to ibug's
``roi_tanh_warping`` as ``face_embedding`` uses it (pixel conventions in ``mapping``). The formulas live in
:mod:`facebone.plugins.warps.mapping`; the modules in :mod:`facebone.plugins.warps.modules`
(imported lazily: this hook module must import fast).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

import facebone
from facebone import option


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoITanhOptions:
    """Options shared by every RoI Tanh warp."""

    output_height: int = option(0, "warped image height in pixels (0: the image size)")
    output_width: int = option(0, "warped image width in pixels (0: the image size)")
    roi_ratio: float = option(0.8, "side of the fixed central RoI as a fraction of the image side, "
                                   "used when no per-sample RoIs are given")
    fixed_roi: Literal["exact", "ibug"] = option(
        "exact", "fixed central RoI: exact side roi_ratio x image side, or ibug face_embedding's truncated "
                 "integer box ((11, 11, 100, 100) at 112 px, 0.8) for models trained with it")
    interpolation: Literal["bilinear", "nearest", "bicubic"] = option("bilinear", "grid_sample interpolation")
    padding_mode: Literal["zeros", "border", "reflection"] = option(
        "zeros", "what the warp and its restore sample outside the image: zeros = black (-1, as ibug's "
                 "zero padding before normalisation), border = the nearest edge pixel")
    jitter_shift: float = option(0.0, "training-time RoI jitter: largest centre shift, as a fraction of the RoI size")
    jitter_scale: float = option(0.0, "training-time RoI jitter: largest relative size change (log-uniform)")
    jitter_angle: float = option(0.0, "training-time RoI jitter: largest rotation, in degrees")

    def __post_init__(self) -> None:
        for key in ("output_height", "output_width"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}' must be >= 0 (0: the image size), got {getattr(self, key)}")
        if not 0 < self.roi_ratio <= 1:
            raise ValueError(f"key 'roi_ratio' must be in (0, 1], got {self.roi_ratio}")
        for key in ("jitter_shift", "jitter_scale", "jitter_angle"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}' must be >= 0, got {getattr(self, key)}")
        if self.jitter_shift >= 0.5:
            raise ValueError(f"key 'jitter_shift' must be < 0.5 of the RoI size, got {self.jitter_shift}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoITanhRadialOptions(RoITanhOptions):
    """Options of the polar and circular RoI Tanh warps."""

    keep_aspect_ratio: bool = option(True, "angles are geometric angles of the face (true, as the "
                                           "face-embedding models use) or the RoI ellipse's parametric angles")


def _builder(space: str):  # type: ignore[no-untyped-def]
    def build(options: RoITanhOptions, *, image_size: int, **runtime: Any):  # type: ignore[no-untyped-def]
        from facebone.plugins.warps.modules import RoITanhFamilyWarp

        out = (options.output_height or image_size, options.output_width or image_size)
        return RoITanhFamilyWarp(
            space, image_size=image_size, output_size=out, roi_ratio=options.roi_ratio,
            fixed_roi=options.fixed_roi, interpolation=options.interpolation, padding_mode=options.padding_mode,
            keep_aspect_ratio=getattr(options, "keep_aspect_ratio", True),
            jitter_shift=options.jitter_shift, jitter_scale=options.jitter_scale,
            jitter_angle=options.jitter_angle)

    build.__name__ = f"build_{space}"
    return build


build_roi_tanh = _builder("roi_tanh")
build_roi_tanh_polar = _builder("roi_tanh_polar")
build_roi_tanh_circular = _builder("roi_tanh_circular")


@facebone.hookimpl
def facebone_warps(registry):  # type: ignore[no-untyped-def]
    registry.add("roi_tanh", build_roi_tanh, options=RoITanhOptions,
                 summary="RoI Tanh: per-axis artanh stretch of the (rotated) RoI box")
    registry.add("roi_tanh_polar", build_roi_tanh_polar, options=RoITanhRadialOptions,
                 summary="RoI Tanh-polar: rows are angles, columns tanh-compressed radii of the RoI ellipse")
    registry.add("roi_tanh_circular", build_roi_tanh_circular, options=RoITanhRadialOptions,
                 summary="RoI Tanh-circular: the RoI Tanh-polar radial law laid out on a disc")
