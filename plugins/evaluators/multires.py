"""Evaluators of BTNet's multi-resolution protocols (research/btnet.md §3):

* ``verification_multires``: ``.bin`` pairs whose two sides are degraded to ``reso1`` and
  ``reso2`` (optionally upsampled back), each embedded by the path ``model1`` / ``model2``;
  10-fold accuracy with flip-sum as InsightFace's verification (§3.1).
* ``survface``: QMUL-SurvFace open-set 1:N in its published layout (§3.4): TPIR20 at FPIR and
  the AUC over a 1,000-threshold grid; each face at its native size (routed by a btnet).

The IJB protocols with a resolution per view are options of ``ijb`` / ``ijb_identification``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import facebone
from facebone import option

Model = Literal["auto", "trunk", "branch"]
Filter = Literal["bilinear", "bicubic", "area", "nearest"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerificationMultiresOptions:
    """Options of ``verification_multires``."""

    targets: list[str] = option(help="sets: names resolved as <root>/<name>.bin, or paths to .bin files")
    root: str = option("", help="directory of the named sets (default: the experiment's [data] train)")
    reso1: int = option(112, help="side 1 (the first image of each pair) is resized to reso1 x reso1")
    reso2: int = option(112, help="side 2 (the second image of each pair) is resized to reso2 x reso2")
    upsample1: bool = option(False, help="resize side 1 back to the model's input size after degrading it")
    upsample2: bool = option(False, help="resize side 2 back to the model's input size after degrading it")
    model1: Model = option("auto", help="path for side 1 of a routing backbone: auto (by size), trunk, or "
                                        "branch (the one at reso1)")
    model2: Model = option("auto", help="path for side 2: auto, trunk or branch (the one at reso2)")
    filter: Filter = option("bilinear", help="resampling filter of the degradation")
    antialias: bool = option(False, help="antialias the downscale (false: OpenCV/MXNet INTER_LINEAR, the original's)")
    batch_size: int = option(2048, help="images handed to the embedder per call (bounds memory)")
    n_folds: int = option(10, help="cross-validation folds (InsightFace: 10)")
    far: float = option(1e-3, help="target FAR of the reported VAL")

    def __post_init__(self) -> None:
        from facebone.plugins.evaluators.resolution import Side

        if not self.targets:
            raise ValueError("targets: give at least one set (e.g. [\"lfw\"])")
        problems = Side(self.reso1, self.upsample1, self.model1).problems("1")
        problems += Side(self.reso2, self.upsample2, self.model2).problems("2")
        if problems:
            raise ValueError("; ".join(problems))
        if self.batch_size < 1 or self.n_folds < 2 or not 0.0 < self.far < 1.0:
            raise ValueError("batch_size must be >= 1, n_folds >= 2 and far in (0, 1)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SurvFaceOptions:
    """Options of ``survface``."""

    root: str = option(help="directory holding Face_Identification_Test_Set/ (QMUL-SurvFace)")
    fpirs: list[float] = option(default_factory=lambda: [0.3, 0.2, 0.1, 0.01],
                                help="FPIRs of the reported TPIR20 (the grid threshold whose FPIR is nearest)")
    rank: int = option(20, help="a mated probe counts when its identity is within the top `rank` (SurvFace: 20)")
    flip: bool = option(False, help="add the mirrored face's embedding (the original embeds each face once)")
    thresholds: int = option(1000, help="points of the threshold grid (the AUC is a trapezoid over them)")
    batch_size: int = option(1024, help="images handed to the embedder per call")
    workers: int = option(4, help="threads decoding images")

    def __post_init__(self) -> None:
        if not self.root:
            raise ValueError("root: give the QMUL-SurvFace directory")
        if self.rank < 1 or self.thresholds < 2 or self.batch_size < 1 or self.workers < 1:
            raise ValueError("rank, batch_size and workers must be >= 1, thresholds >= 2")
        if not self.fpirs or not all(0.0 <= f <= 1.0 for f in self.fpirs):
            raise ValueError("fpirs: give FPIRs between 0 and 1")


def build_verification_multires(options: VerificationMultiresOptions, *, data_root: Path | None = None,
                                **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.evaluators.multires_verification import MultiresVerification

    return MultiresVerification(options, data_root=data_root)


def build_survface(options: SurvFaceOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.evaluators.survface_eval import SurvFaceIdentification

    return SurvFaceIdentification(options)


@facebone.hookimpl
def facebone_evaluators(registry):  # type: ignore[no-untyped-def]
    registry.add("verification_multires", build_verification_multires, options=VerificationMultiresOptions,
                 summary="10-fold pair accuracy with each side at its own resolution and path (BTNet's <id1, id2>)")
    registry.add("survface", build_survface, options=SurvFaceOptions,
                 summary="QMUL-SurvFace open-set 1:N: TPIR20 at FPIR 0.3/0.2/0.1/0.01 and AUC, faces at native size")
