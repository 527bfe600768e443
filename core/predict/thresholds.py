"""Decision thresholds from a run's own verification results.

An evaluator's folder ``RUN_DIR/eval/<name>/`` holds ``summary.json`` whose ``sets`` name the
saved pair scores and labels (.npy; cosine similarity, higher = same identity). The threshold
at a FAR is the smallest score ``t`` such that at most ``FAR x impostors`` impostor pairs of that
set score ``>= t``; a pair is declared the same identity when its similarity is ``>= t``.
With fewer than ``1 / FAR`` impostor pairs no impostor may pass, and the threshold lies just
above the highest impostor score: the set cannot resolve that FAR, which the source text says.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from facebone.errors import ConfigError, DataError

PAIR_EVALUATORS = ("verification",)
"""Evaluators whose pairs are single images, like the pairs `facebone verify` decides; their sets
are preferred over template-based ones (IJB)."""


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A threshold and where it came from."""

    value: float
    far: float
    """The FAR asked for."""
    achieved_far: float
    """The FAR on the set at this threshold (impostors >= value / impostors)."""
    tar: float
    """Genuine pairs >= value / genuine pairs."""
    impostors: int
    genuine: int
    set_name: str
    scores_file: str

    @property
    def resolved(self) -> bool:
        """False when the set has fewer than 1 / FAR impostor pairs."""
        return self.impostors * self.far >= 1.0

    def source(self) -> str:
        """One line: the set, its file and its counts, the FAR reached and the TAR there."""
        text = (f"FAR {self.far:g} on '{self.set_name}' ({self.scores_file}: {self.impostors} impostor and "
                f"{self.genuine} genuine pairs; there FAR {self.achieved_far:.3g}, TAR {self.tar:.3g})")
        if not self.resolved:
            text += (f"; only {self.impostors} impostor pairs, fewer than 1/FAR: the threshold is just above "
                     "the highest impostor score")
        return text


def threshold_at_far(labels: np.ndarray, scores: np.ndarray, far: float) -> tuple[float, float, float]:
    """``(threshold, achieved FAR, TAR)``: the smallest ``t`` with ``#(impostor >= t) <= far x #impostors``."""
    labels = np.asarray(labels).reshape(-1) != 0
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    neg = np.sort(scores[~labels])[::-1]
    pos = scores[labels]
    if not len(neg):
        raise DataError("no impostor pairs: no threshold at a FAR can be set")
    allowed = int(np.floor(far * len(neg) + 1e-9))
    t = float(np.nextafter(neg[allowed], np.inf)) if allowed < len(neg) else float(neg[-1])
    achieved = float((neg >= t).mean())
    tar = float((pos >= t).mean()) if len(pos) else float("nan")
    return t, achieved, tar


def scored_sets(run_dir: Path) -> list[dict[str, Any]]:
    """Every saved score set of a run: ``{"evaluator", "eval_name", "set", "dir", "entry"}``, in
    the order of the run's evaluator folders."""
    from facebone.metrics.artifacts import load_summary

    root = Path(run_dir) / "eval"
    found = []
    for folder in sorted(p for p in root.glob("*") if (p / "summary.json").is_file()) if root.is_dir() else []:
        summary = load_summary(folder)
        for set_name, entry in (summary.get("sets") or {}).items():
            if isinstance(entry, dict) and entry.get("scores") and entry.get("labels"):
                found.append({"evaluator": str(summary.get("evaluator", "")), "eval_name": folder.name,
                              "set": set_name, "dir": folder, "entry": entry})
    return found


def run_threshold(run_dir: Path, far: float, on: str | None = None) -> Threshold:
    """The threshold at ``far`` from the run's saved scores.

    ``on`` names the set (``"holdout"``, or ``"EVAL_NAME/SET"``); by default the image-pair
    verification set with the most impostor pairs, else any saved set with the most.
    """
    from facebone.metrics.artifacts import load_scores

    if not 0.0 < far < 1.0:
        raise ConfigError(f"--far {far}: must be between 0 and 1")
    sets = scored_sets(run_dir)
    if not sets:
        raise DataError(f"{run_dir}: no saved verification scores (eval/*/summary.json); run `facebone eval "
                        f"{run_dir}` first, or give a threshold")
    if on is not None:
        chosen = [s for s in sets if on in (s["set"], f"{s['eval_name']}/{s['set']}")]
        if not chosen:
            names = ", ".join(f"{s['eval_name']}/{s['set']}" for s in sets)
            raise ConfigError(f"{run_dir}: no saved score set '{on}' (it has: {names})")
    else:
        chosen = [s for s in sets if s["evaluator"] in PAIR_EVALUATORS] or sets
    best = None
    for s in chosen:
        labels, scores = load_scores(s["dir"], s["entry"])
        impostors = int((np.asarray(labels) == 0).sum())
        if best is None or impostors > best[0]:
            best = (impostors, s, labels, scores)
    impostors, s, labels, scores = best  # type: ignore[misc]
    value, achieved, tar = threshold_at_far(labels, scores, far)
    scores_file = str(Path(s["dir"]) / str(s["entry"]["scores"]))
    return Threshold(value=value, far=far, achieved_far=achieved, tar=tar, impostors=impostors,
                     genuine=int(len(labels) - impostors), set_name=f"{s['eval_name']}/{s['set']}",
                     scores_file=scores_file)
