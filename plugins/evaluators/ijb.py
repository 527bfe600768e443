"""Evaluators ``ijb`` (1:1 template verification, TPR at FPR) and ``ijb_identification`` (1:N with the
G1/G2 galleries and mixed probes) on IJB-B/C in InsightFace's layout (see
:mod:`facebone.plugins.evaluators.ijb_meta`). With ``resolutions = [r1, r2]`` each image's
feature is BTNet's two-view sum (research/btnet.md §3.2-3.3)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import facebone
from facebone import option


@dataclasses.dataclass(frozen=True, kw_only=True)
class IJBOptions:
    """Test-time choices shared by both IJB evaluators (defaults: InsightFace's F1/N1/D1 mode)."""

    root: str = option(help="IJB directory holding meta/ and loose_crop/ (e.g. IJB_release/IJBC)")
    target: Literal["IJBC", "IJBB"] = option("IJBC", help="which set: names the meta files (ijbc_*, ijbb_*)")
    flip: bool = option(True, help="add the mirrored image's embedding (flip test)")
    norm_score: bool = option(True, help="keep embedding norms as quality weights (False: normalise images first)")
    detector_score: bool = option(True, help="weight each image by its detector (faceness) score")
    batch_size: int = option(512, help="aligned images handed to the embedder per call")
    workers: int = option(4, help="threads decoding and aligning images")
    image_size: int = option(112, help="side of the aligned crop (the ArcFace template is for 112)")
    warp: Literal["fixed", "float"] = option("fixed", help="alignment arithmetic: 'fixed' = cv2.warpAffine of "
                                             "OpenCV 3/4 exactly (InsightFace's published runs), 'float' = "
                                             "OpenCV 5 (within 1 grey level)")
    plots: bool = option(True, help="write PNG plots")
    resolutions: list[int] = option(default_factory=list, help="[r1, r2]: BTNet's two-view feature, e(crop at r1) "
                                    "+ e(mirrored crop at r2) (OpenCV bilinear); [] = the usual flip test")
    upsample: list[bool] = option(default_factory=lambda: [False, False],
                                  help="per view: resize the degraded crop back to image_size")
    models: list[str] = option(default_factory=lambda: ["auto", "auto"],
                               help="per view, for a routing backbone: auto (by size), trunk or branch (at r)")

    def __post_init__(self) -> None:
        if not self.root:
            raise ValueError("root: give the IJB directory (holding meta/ and loose_crop/)")
        if self.batch_size < 1 or self.workers < 1 or self.image_size < 8:
            raise ValueError("batch_size and workers must be >= 1, image_size >= 8")
        if self.resolutions:
            from facebone.plugins.evaluators.resolution import Side

            if len(self.resolutions) != 2 or len(self.upsample) != 2 or len(self.models) != 2:
                raise ValueError("resolutions, upsample and models take two values each (view 1, view 2)")
            problems = [p for i, side in enumerate(self.sides()) for p in side.problems(str(i + 1))]
            if problems:
                raise ValueError("; ".join(problems))

    def sides(self) -> tuple:  # type: ignore[type-arg]
        """The two views' :class:`~facebone.plugins.evaluators.resolution.Side` (with ``resolutions``)."""
        from facebone.plugins.evaluators.resolution import Side

        return tuple(Side(r, u, m) for r, u, m in zip(self.resolutions, self.upsample, self.models))


@dataclasses.dataclass(frozen=True, kw_only=True)
class IJBVerificationOptions(IJBOptions):
    """Options of the ``ijb`` (1:1) evaluator."""

    fprs: list[float] = option(default_factory=lambda: [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
                               help="FPRs of the TPR@FPR table (nearest ROC point, as InsightFace)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class IJBIdentificationOptions(IJBOptions):
    """Options of the ``ijb_identification`` (1:N) evaluator."""

    norm_score: bool = option(False, help="keep embedding norms as quality weights (default False, as "
                                          "InsightFace's ijb_evals.py 1:N)")
    ranks: list[int] = option(default_factory=lambda: [1, 5, 10], help="CMC ranks reported")
    fpirs: list[float] = option(default_factory=lambda: [1e-3, 1e-2, 1e-1], help="FPIRs of the open-set TPIR")
    union_gallery: bool = option(False, help="also report BTNet's 1:N on G1+G2 (closed set): rank-k and TPIR at a "
                                             "threshold whose 'FPIR' counts non-mated scores per probe (non-standard)")


def build_ijb(options: IJBVerificationOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.evaluators.ijb_eval import IJBVerification

    return IJBVerification(options)


def build_ijb_identification(options: IJBIdentificationOptions, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.evaluators.ijb_eval import IJBIdentification

    return IJBIdentification(options)


def check_ijb(options: IJBOptions, experiment: dict[str, Any]) -> list[str]:
    """At validation time: ``root`` holds ``meta/<p>_face_tid_mid.txt`` and ``loose_crop/``."""
    root = Path(options.root).expanduser()
    if not root.is_dir():
        return [f"key 'root': {root} is not a directory (the IJB folder holding meta/ and loose_crop/)"]
    meta = root / "meta" / f"{options.target.lower()}_face_tid_mid.txt"
    problems = [] if meta.is_file() else [f"key 'root': {meta} does not exist (is target = {options.target!r} right?)"]
    if not (root / "loose_crop").is_dir():
        problems.append(f"key 'root': {root / 'loose_crop'} is not a directory")
    return problems


@facebone.hookimpl
def facebone_evaluators(registry):  # type: ignore[no-untyped-def]
    registry.add("ijb", build_ijb, options=IJBVerificationOptions, check_inputs=check_ijb,
                 summary="IJB-B/C 1:1 template verification: TPR at FPR table, ROC, AUC (InsightFace protocol)")
    registry.add("ijb_identification", build_ijb_identification, options=IJBIdentificationOptions, check_inputs=check_ijb,
                 summary="IJB-B/C 1:N identification with G1/G2 galleries: rank-1/5/10, TPIR at FPIR, CMC")
