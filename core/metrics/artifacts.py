"""Evaluator artifacts: score arrays (.npy) and summaries (JSON), written atomically.

Layout shared by every built-in evaluator (``facebone compare`` reads it): the evaluator's
``out_dir`` (``RUN_DIR/eval/<name>``) holds ``summary.json`` with ``"evaluator"``,
``"metrics"`` (the flat dict returned) and ``"sets"``: one entry per score set, naming its
``"scores"`` and ``"labels"`` .npy files (relative to ``out_dir``; higher score = more
likely the same identity) and its headline numbers.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from facebone.errors import DataError
from facebone.io import atomic_write, atomic_write_json


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` (.npy) atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array))

    return atomic_write(path, write)


def save_summary(out_dir: str | Path, evaluator: str, metrics: dict[str, float], sets: dict[str, Any],
                 **extra: Any) -> Path:
    """Write ``out_dir/summary.json``."""
    return atomic_write_json(Path(out_dir) / "summary.json",
                             {"evaluator": evaluator, "metrics": metrics, "sets": sets, **extra})


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    """Read ``out_dir/summary.json`` (DataError naming the file if missing or invalid)."""
    path = Path(out_dir) / "summary.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no evaluation summary") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable evaluation summary ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sets", {}), dict):
        raise DataError(f"{path}: not a facebone evaluation summary")
    return data


def load_scores(out_dir: str | Path, entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, scores)`` of one ``sets`` entry of a summary."""
    out_dir = Path(out_dir)
    arrays = []
    for key in ("labels", "scores"):
        path = out_dir / str(entry.get(key, ""))
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read saved {key} ({exc})") from None
    labels, scores = arrays
    if labels.shape != scores.shape:
        raise DataError(f"{out_dir}: {entry.get('labels')} and {entry.get('scores')} differ in length")
    return labels, scores
