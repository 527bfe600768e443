"""Evaluator ``verification``: InsightFace ``.bin`` pair sets (LFW, CFP-FP, AgeDB-30, ...).

Reports, per set, 10-fold accuracy and its std, VAL at FAR and XNorm (see
:mod:`facebone.metrics.verification`), plus the mean accuracy over sets.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import facebone
from facebone import option


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerificationOptions:
    """Options of the ``verification`` evaluator."""

    targets: list[str] = option(help="sets to evaluate: names resolved as <root>/<name>.bin, or paths to .bin files")
    root: str = option("", help="directory of the named sets (default: the experiment's [data] train)")
    batch_size: int = option(2048, help="images handed to the embedder per call (bounds memory)")
    n_folds: int = option(10, help="cross-validation folds (InsightFace: 10)")
    far: float = option(1e-3, help="target FAR of the reported VAL")
    plots: bool = option(True, help="write a ROC plot (PNG) per set")

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("targets: give at least one set (e.g. [\"lfw\"])")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.n_folds < 2:
            raise ValueError("n_folds must be at least 2")
        if not 0.0 < self.far < 1.0:
            raise ValueError("far must be between 0 and 1")


def build_verification(options: VerificationOptions, *, data_root: Path | None = None, **runtime: Any):  # type: ignore[no-untyped-def]
    from facebone.plugins.evaluators.bin_sets import BinVerification

    return BinVerification(options, data_root=data_root)


def check_verification(options: VerificationOptions, experiment: dict[str, Any]) -> list[str]:
    """Every target must be an existing ``.bin`` file (the synthetic set's ``holdout.bin`` excepted,
    which ``[data.synth]`` writes before training)."""
    from facebone.plugins.evaluators.bin_sets import resolve_target

    data = experiment.get("data", {})
    train = data.get("train") if isinstance(data, dict) else None
    root_text = options.root or (str(train) if isinstance(train, str) else "")
    root = Path(root_text).expanduser() if root_text else None
    synth_bin = Path(train).expanduser() / "holdout.bin" if isinstance(train, str) and data.get("synth") else None
    problems = []
    for target in options.targets:
        try:
            _, path = resolve_target(target, root)
        except facebone.FaceboneError as exc:
            problems.append(str(exc))
            continue
        if synth_bin is not None and path.expanduser().absolute() == synth_bin.absolute():
            continue
        if not path.is_file():
            what = "is not a file" if path.exists() else "does not exist"
            problems.append(f"key 'targets': '{target}' -> {path} {what} (a verification .bin)")
    return problems


@facebone.hookimpl
def facebone_evaluators(registry):  # type: ignore[no-untyped-def]
    registry.add("verification", build_verification, options=VerificationOptions, check_inputs=check_verification,
                 summary="10-fold accuracy, VAL@FAR and XNorm on InsightFace .bin pair sets (LFW, CFP-FP, AgeDB)")
