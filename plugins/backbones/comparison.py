"""Registers the light nets of the backbone comparison (github ItO210/arcface-backbone-comparative):
``shufflefacenet_cmp_0_5/1_0/1_5/2_0`` and ``mixfacenet_cmp_xs/s/m`` (``shuffle = true``: its
ShuffleMixFaceNets).

These are the simplified networks that comparison trained and measured, not the papers'
ShuffleFaceNet and MixFaceNets (``shufflefacenet_*``, ``mixfacenet_*``). Names give the real
width: the repository's ``sfn1_0`` is 1.5x wide (``shufflefacenet_cmp_1_5``) and its
``sfn1_5`` is 1.0x (``shufflefacenet_cmp_1_0``). Its ``mbf`` is facebone's ``mobilefacenet``.
``facebone import-weights comparison`` takes the repository's names and checkpoints.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone.errors import ConfigError
from facebone.plugins.backbones.checks import check_image_size

SHUFFLE_SCALES = ("0.5", "1.0", "1.5", "2.0")
MIX_VARIANTS = ("xs", "s", "m")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShuffleFaceNetCmpOptions:
    """The comparison's ShuffleFaceNet has no options: the width is chosen by name."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class MixFaceNetCmpOptions:
    """Options of every ``mixfacenet_cmp_*`` backbone."""

    shuffle: bool = facebone.option(False, "2-group channel shuffle after every unit (the comparison's "
                                           "ShuffleMixFaceNet, smfn_*)")


def check_mix_image_size(options: Any, experiment: dict) -> list[str]:
    size = (experiment.get("data") or {}).get("image_size", 112)
    name = (experiment.get("backbone") or {}).get("type", "mixfacenet_cmp")
    if isinstance(size, int) and not 16 <= size <= 384:
        return [f"[data] key 'image_size' = {size}: {name} needs 16 to 384 pixels (its final map must stay "
                "below 7x7, where the original switches to a head this variant does not build)"]
    return []


def _shuffle_factory(scale: str):  # type: ignore[no-untyped-def]
    def build(options: Any, *, embedding_size: int = 512, image_size: int = 112, **runtime: Any):  # type: ignore[no-untyped-def]
        if image_size % 16 or image_size < 16:
            raise ConfigError(f"[data] key 'image_size' = {image_size}: shufflefacenet_cmp needs a multiple of 16")
        from facebone.plugins.backbones.shufflefacenet_cmp_model import ComparisonShuffleFaceNet

        return ComparisonShuffleFaceNet(scale, embedding_size=embedding_size, image_size=image_size)

    build.__name__ = f"build_shufflefacenet_cmp_{scale.replace('.', '_')}"
    return build


def _mix_factory(variant: str):  # type: ignore[no-untyped-def]
    def build(options: MixFaceNetCmpOptions | None, *, embedding_size: int = 512, image_size: int = 112,
              **runtime: Any):  # type: ignore[no-untyped-def]
        if not 16 <= image_size <= 384:
            raise ConfigError(f"[data] key 'image_size' = {image_size}: mixfacenet_cmp_{variant} needs 16 to 384")
        from facebone.plugins.backbones.mixfacenet_cmp_model import ComparisonMixFaceNet

        return ComparisonMixFaceNet(variant, embedding_size=embedding_size, image_size=image_size,
                                    shuffle=options.shuffle if options is not None else False)

    build.__name__ = f"build_mixfacenet_cmp_{variant}"
    return build


@facebone.hookimpl
def facebone_backbones(registry):  # type: ignore[no-untyped-def]
    for scale in SHUFFLE_SCALES:
        registry.add(f"shufflefacenet_cmp_{scale.replace('.', '_')}", _shuffle_factory(scale),
                     options=ShuffleFaceNetCmpOptions, check=check_image_size,
                     summary=f"ShuffleFaceNet {scale}x as the backbone comparison measured it (max pool, "
                             "strides 2/2/1, GDC + PReLU; a simplified net)")
    for variant in MIX_VARIANTS:
        registry.add(f"mixfacenet_cmp_{variant}", _mix_factory(variant), options=MixFaceNetCmpOptions,
                     check=check_mix_image_size,
                     summary=f"MixFaceNet-{variant.upper()} as the backbone comparison measured it (one unit "
                             "per stage, no expansion, GAP head; a simplified net)")
