"""Registers ``mobilefacenet`` and ``mobilefacenet_large`` (InsightFace ``mbf`` / ``mbf_large`` keys)."""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone.errors import ConfigError
from facebone.plugins.backbones.checks import check_image_size

VARIANTS = {
    "mobilefacenet": ((1, 4, 6, 2), 2, "MobileFaceNet (InsightFace mbf, GDC head; 2.06M parameters)"),
    "mobilefacenet_large": ((2, 8, 12, 4), 4, "MobileFaceNet-large (InsightFace mbf_large, GDC head; 6.31M parameters)"),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class MobileFaceNetOptions:
    """MobileFaceNet has no options: the variant is chosen by name."""


def _factory(name: str):  # type: ignore[no-untyped-def]
    blocks, scale, _ = VARIANTS[name]

    def build(options: MobileFaceNetOptions | None, *, embedding_size: int = 512, image_size: int = 112,
              **runtime: Any):  # type: ignore[no-untyped-def]
        if image_size % 16 or image_size < 16:
            raise ConfigError(f"[data] key 'image_size' = {image_size}: {name} needs a multiple of 16 (e.g. 112)")
        from facebone.plugins.backbones.mobilefacenet_model import MobileFaceNet

        return MobileFaceNet(embedding_size=embedding_size, image_size=image_size, blocks=blocks, scale=scale)

    build.__name__ = f"build_{name}"
    return build


@facebone.hookimpl
def facebone_backbones(registry):  # type: ignore[no-untyped-def]
    for name, (_, _, summary) in VARIANTS.items():
        registry.add(name, _factory(name), options=MobileFaceNetOptions, summary=summary, check=check_image_size)
