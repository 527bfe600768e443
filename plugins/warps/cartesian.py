"""The identity warp: images reach the backbone in ordinary (Cartesian) coordinates."""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone


@dataclasses.dataclass(frozen=True, kw_only=True)
class CartesianOptions:
    """The identity warp has no options."""


def build_cartesian(options: CartesianOptions, *, image_size: int, **runtime: Any):  # type: ignore[no-untyped-def]
    from torch import nn

    class CartesianWarp(nn.Module):
        """Identity: ``forward`` and ``restore`` return their input unchanged."""

        def __init__(self, size: int):
            super().__init__()
            self.output_size = (size, size)

        def forward(self, images, rois=None):  # type: ignore[no-untyped-def]
            return images

        def restore(self, warped, rois=None, size=None):  # type: ignore[no-untyped-def]
            return warped

    return CartesianWarp(image_size)


@facebone.hookimpl
def facebone_warps(registry):  # type: ignore[no-untyped-def]
    registry.add("cartesian", build_cartesian, options=CartesianOptions,
                 summary="Identity warp: the aligned crop as it is")
