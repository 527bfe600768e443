"""Training curves of runs: every scalar a run logged to TensorBoard, read with tensorboard's own reader."""
from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np

from facebone.errors import ConfigError, DataError


def read_scalars(tensorboard_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{tag: (steps, values)}`` from every event file under ``tensorboard_dir``, by step.

    A resumed run writes a new event file and may log a step twice: the later value wins.
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    files = sorted(tensorboard_dir.glob("events.out.tfevents.*")) if tensorboard_dir.is_dir() else []
    if not files:
        raise DataError(f"{tensorboard_dir}: no TensorBoard event files (is this a facebone run directory?)")
    merged: dict[str, dict[int, float]] = {}
    for file in files:
        acc = EventAccumulator(str(file), size_guidance={SCALARS: 0})
        try:
            acc.Reload()
        except Exception as exc:  # a truncated or foreign file: name it
            raise DataError(f"{file}: unreadable TensorBoard event file ({type(exc).__name__}: {exc})") from None
        for tag in acc.Tags().get("scalars", []):
            by_step = merged.setdefault(tag, {})
            for event in acc.Scalars(tag):
                by_step[int(event.step)] = float(event.value)
    return {tag: (np.array(sorted(d), dtype=np.int64), np.array([d[s] for s in sorted(d)], dtype=np.float64))
            for tag, d in merged.items()}


def select_tags(tags: list[str], patterns: list[str] | None) -> list[str]:
    """Tags matching any pattern; a pattern matches a whole tag, its last part ('loss' ~ 'train/loss')
    or a wildcard ('eval/*'). A pattern that matches nothing is an error naming the available tags."""
    if not patterns:
        return sorted(tags)
    chosen: list[str] = []
    for pattern in patterns:
        hits = [t for t in sorted(tags) if fnmatch.fnmatchcase(t, pattern) or t.rsplit("/", 1)[-1] == pattern]
        if not hits:
            raise ConfigError(f"--metrics {pattern!r}: no such curve in these runs; available: {', '.join(sorted(tags))}")
        chosen += [t for t in hits if t not in chosen]
    return chosen
