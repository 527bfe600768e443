"""Registers ``shufflefacenet_0_5``, ``_1_0``, ``_1_5``, ``_2_0`` (ShuffleFaceNet, ICCVW 2019)."""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone.errors import ConfigError
from facebone.plugins.backbones.checks import check_image_size

SCALES = ("0.5", "1.0", "1.5", "2.0")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShuffleFaceNetOptions:
    """ShuffleFaceNet has no options: the complexity is chosen by name."""


def _factory(scale: str):  # type: ignore[no-untyped-def]
    def build(options: Any, *, embedding_size: int = 512, image_size: int = 112, **runtime: Any):  # type: ignore[no-untyped-def]
        if image_size % 16 or image_size < 16:
            raise ConfigError(f"[data] key 'image_size' = {image_size}: shufflefacenet needs a multiple of 16")
        from facebone.plugins.backbones.shufflefacenet_model import ShuffleFaceNet

        return ShuffleFaceNet(scale, embedding_size=embedding_size, image_size=image_size)

    build.__name__ = f"build_shufflefacenet_{scale.replace('.', '_')}"
    return build


@facebone.hookimpl
def facebone_backbones(registry):  # type: ignore[no-untyped-def]
    for scale in SCALES:
        registry.add(f"shufflefacenet_{scale.replace('.', '_')}", _factory(scale), options=ShuffleFaceNetOptions,
                     summary=f"ShuffleFaceNet {scale}x (ShuffleNetV2 units, PReLU, GDC head; ICCVW 2019)",
                     check=check_image_size)
