"""Checkpoints of ibug ``face_embedding`` (``arcface_*_{iresnet18,iresnet50,rtnet50}.pth``) -> facebone keys.

The iResNets use InsightFace's key names, which facebone's ``iresnet*`` share. ``rtnet50``
names differ for 516 of its 523 keys (all but ``fc.*`` and ``features.*``); the mapping is a
rule per module, applied to every block::

    conv1 / bn1 / prelu                     -> stem.0 / stem.1 / stem.2
    layerL.B.conv1_a / bn1_a                -> stages.(L-1).B.reduce_a.0 / reduce_a.1
    layerL.B.conv1_b / bn1_b                -> stages.(L-1).B.reduce_b.0 / reduce_b.1
    layerL.B.conv_polar.0.1 / conv_polar.1  -> stages.(L-1).B.polar.0.conv / polar.1
    layerL.B.conv_cart.0 / conv_cart.1      -> stages.(L-1).B.hybrid.conv / hybrid.bn
    layerL.B.conv3 / bn3                    -> stages.(L-1).B.expand.0 / expand.1
    layerL.B.downsample.I                   -> stages.(L-1).B.downsample.I
    bn2                                     -> bn

Keys that match no rule are kept as they are, so the caller's key/shape check reports them.
The models expect the original's warp: ``roi_tanh_polar`` (or roi_tanh / roi_tanh_circular for
iResNets trained on them) with ``keep_aspect_ratio = true`` and ``fixed_roi = "ibug"``.
"""
from __future__ import annotations

import re
from typing import Any

from facebone.errors import ConfigError

_BLOCK = r"layer(?P<layer>[1-4])\.(?P<block>\d+)\."
_RTNET_RULES: list[tuple[str, str]] = [  # (ibug module path, facebone module path) inside a block
    ("conv1_a", "reduce_a.0"), ("bn1_a", "reduce_a.1"),
    ("conv1_b", "reduce_b.0"), ("bn1_b", "reduce_b.1"),
    ("conv_polar.0.1", "polar.0.conv"), ("conv_polar.1", "polar.1"),
    ("conv_cart.0", "hybrid.conv"), ("conv_cart.1", "hybrid.bn"),
    ("conv3", "expand.0"), ("bn3", "expand.1"),
    ("downsample.0", "downsample.0"), ("downsample.1", "downsample.1"),
]
_RTNET_TOP: list[tuple[str, str]] = [("conv1", "stem.0"), ("bn1", "stem.1"), ("prelu", "stem.2"), ("bn2", "bn"),
                                     ("fc", "fc"), ("features", "features")]

BACKBONES = ("rtnet50", "iresnet18", "iresnet50")
"""The backbones ibug face_embedding publishes (its iresnet module also defines 34, 100 and 200)."""


def rtnet_key_to_facebone(key: str) -> str | None:
    """The facebone ``rtnet50`` key of an ibug ``rtnet50`` key, or None if no rule matches."""
    m = re.fullmatch(_BLOCK + r"(?P<module>.+)\.(?P<leaf>[a-z_]+)", key)
    if m:
        for ibug, ours in _RTNET_RULES:
            if m["module"] == ibug:
                return f"stages.{int(m['layer']) - 1}.{m['block']}.{ours}.{m['leaf']}"
        return None
    module, _, leaf = key.rpartition(".")
    for ibug, ours in _RTNET_TOP:
        if module == ibug:
            return f"{ours}.{leaf}"
    return None


def rtnet_key_to_ibug(key: str) -> str | None:
    """Inverse of :func:`rtnet_key_to_facebone`: the ibug name of a facebone ``rtnet50`` key."""
    m = re.fullmatch(r"stages\.(?P<stage>[0-3])\.(?P<block>\d+)\.(?P<module>.+)\.(?P<leaf>[a-z_]+)", key)
    if m:
        for ibug, ours in _RTNET_RULES:
            if m["module"] == ours:
                return f"layer{int(m['stage']) + 1}.{m['block']}.{ibug}.{m['leaf']}"
        return None
    module, _, leaf = key.rpartition(".")
    for ibug, ours in _RTNET_TOP:
        if module == ours:
            return f"{ibug}.{leaf}"
    return None


def to_facebone(state: dict[str, Any], backbone: str) -> dict[str, Any]:
    """An ibug face_embedding state dict with facebone's key names for ``backbone``.

    ``rtnet50``: renamed by the rules above (unmatched keys kept, for the caller's check);
    ``iresnet*``: unchanged. ConfigError for another backbone.
    """
    if backbone == "rtnet50":
        return {rtnet_key_to_facebone(k) or k: v for k, v in state.items()}
    if backbone.startswith("iresnet"):
        return dict(state)
    raise ConfigError(f"--backbone {backbone}: ibug face_embedding checkpoints are for {', '.join(BACKBONES)}")
