"""RTNet-50 backbone plugin (``rtnet50``): a hybrid ResNet-50 for RoI Tanh-polar inputs.

The network of ibug ``face_embedding``'s ``rtnet50(dilated=False)`` (its checkpoints import
with ``facebone import-weights ibug``). It takes the RoIs of the warp in front: FaceModel
passes them, jittered or per sample as the warp used them. The model lives in :mod:`facebone.plugins.backbones.rtnet_model` (imported by the factory:
this hook module must import fast).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone import option

REQUIRED_WARP = "roi_tanh_polar"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RTNetOptions:
    """Options of ``rtnet50``."""

    hybrid: bool = option(True, "convolve half of each 3x3 in RoI Tanh space in every block but the first "
                                "of layers 2-4, as the original (false: both halves on the polar map)")
    dropout: float = option(0.0, "dropout before the embedding layer")

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"key 'dropout' must be in [0, 1), got {self.dropout}")


def check_rtnet(options: RTNetOptions, experiment: dict) -> list[str]:
    """Refuse an experiment whose warp is not ``roi_tanh_polar`` with ``keep_aspect_ratio = true``
    and the backbone's own square output size."""
    warp = experiment.get("warp") or {}
    name = str(warp.get("type", "cartesian"))
    if name.split(":")[-1] != REQUIRED_WARP:
        return [f"[warp] type: backbone 'rtnet50' consumes RoI Tanh-polar images; "
                f"set type = \"{REQUIRED_WARP}\" (got \"{name}\")"]
    problems = []
    if warp.get("keep_aspect_ratio", True) is not True:
        problems.append("[warp] keep_aspect_ratio: backbone 'rtnet50' needs keep_aspect_ratio = true")
    size = (experiment.get("data") or {}).get("image_size", 112)
    for key in ("output_height", "output_width"):
        value = warp.get(key, 0)
        if value not in (0, size):
            problems.append(f"[warp] {key}: backbone 'rtnet50' needs the warp to output the image size "
                            f"({size}) or 0; got {value}")
    return problems


def build_rtnet50(options: RTNetOptions, *, embedding_size: int = 512, image_size: int = 112, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.backbones.rtnet_model import LAYERS_50, RTNet

    return RTNet(embedding_size=embedding_size, image_size=image_size, layers=LAYERS_50,
                 hybrid=options.hybrid, dropout=options.dropout)


@facebone.hookimpl
def facebone_backbones(registry):  # type: ignore[no-untyped-def]
    registry.add("rtnet50", build_rtnet50, options=RTNetOptions, check=check_rtnet,
                 summary="RTNet-50: hybrid polar / RoI Tanh ResNet-50 for roi_tanh_polar inputs (34.6M at 112px)")
