"""Registers ``mixfacenet_xs``, ``mixfacenet_s``, ``mixfacenet_m`` (MixFaceNets, IJCB 2021)."""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone.errors import ConfigError
from facebone.plugins.backbones.checks import check_image_size

SUMMARIES = {"xs": "1.04M params, 0.15 GFLOPs", "s": "3.07M params, 0.44 GFLOPs", "m": "3.95M params, 0.61 GFLOPs"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class MixFaceNetOptions:
    """Options of every ``mixfacenet_*`` backbone."""

    shuffle: bool = facebone.option(False, "2-group channel shuffle after every unit (ShuffleMixFaceNet)")


def _factory(variant: str):  # type: ignore[no-untyped-def]
    def build(options: MixFaceNetOptions, *, embedding_size: int = 512, image_size: int = 112, **runtime: Any):  # type: ignore[no-untyped-def]
        if image_size % 16 or image_size < 16:
            raise ConfigError(f"[data] key 'image_size' = {image_size}: mixfacenet_{variant} needs a multiple of 16")
        from facebone.plugins.backbones.mixfacenet_model import MixFaceNet

        return MixFaceNet(variant, embedding_size=embedding_size, image_size=image_size,
                          shuffle=options.shuffle if options is not None else False)

    build.__name__ = f"build_mixfacenet_{variant}"
    return build


@facebone.hookimpl
def facebone_backbones(registry):  # type: ignore[no-untyped-def]
    for variant, summary in SUMMARIES.items():
        registry.add(f"mixfacenet_{variant}", _factory(variant), options=MixFaceNetOptions,
                     summary=f"MixFaceNet-{variant.upper()} (MixConv units, GDC head; IJCB 2021; {summary})",
                     check=check_image_size)
