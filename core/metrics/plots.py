"""ROC (log FPR, AUC in the legend) and CMC plots as PNG, without touching pyplot's global state."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _figure(width: float = 6.4, height: float = 4.8):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:  # type: ignore[no-untyped-def]
    from facebone.io import atomic_write

    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight",
                                               metadata={"Software": PNG_SOFTWARE}))
    return path


PNG_SOFTWARE = "facebone"
"""The ``Software`` text of every PNG facebone writes: how a later run knows the file is its own."""


def is_facebone_png(path: str | Path) -> bool:
    """True for a PNG that facebone wrote (its ``Software`` text), which it may replace."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get("Software") == PNG_SOFTWARE
    except Exception:  # noqa: BLE001 - unreadable: not ours
        return False


def plot_roc(curves: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | Path, *, title: str = "ROC",
             xlim: tuple[float, float] | None = None) -> Path:
    """ROC curves ``(label, fpr, tpr)`` on a log FPR axis, each labelled with its AUC."""
    from facebone.metrics.roc import auc

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    lowest = 1.0
    for label, fpr, tpr in curves:
        positive = fpr > 0
        if positive.any():
            lowest = min(lowest, float(fpr[positive].min()))
        ax.plot(fpr, tpr, lw=1.2, label=f"{label} (AUC = {100 * auc(fpr, tpr):.2f}%)")
    ax.set_xscale("log")
    if xlim is None:
        xlim = (max(min(lowest, 1e-1), 1e-6), 1.0)
    ax.set_xlim(*xlim)
    ax.set_ylim(0.0, 1.01)
    ax.grid(True, which="major", linestyle="--", linewidth=0.6)
    ax.set_xlabel("False Positive Rate (log)")
    ax.set_ylabel("True Positive Rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_cmc(curves: Sequence[tuple[str, np.ndarray]], path: str | Path, *, title: str = "CMC") -> Path:
    """CMC curves ``(label, accuracy at rank 1..K)``."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for label, acc in curves:
        ranks = np.arange(1, len(acc) + 1)
        ax.plot(ranks, acc, lw=1.2, marker="." if len(acc) <= 30 else None,
                label=f"{label} (rank-1 = {100 * acc[0]:.2f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("Rank (log)")
    ax.set_ylabel("Identification rate")
    ax.set_ylim(0.0, 1.01)
    ax.grid(True, which="both", linestyle="--", linewidth=0.6)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_curves(series: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | Path, *, title: str,
                ylabel: str, log_y: bool = False) -> Path:
    """Curves ``(label, steps, values)`` of several runs against step, one legend entry per run."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    markers = any(len(steps) <= 20 for _, steps, _ in series)  # few points (evaluations): show them
    for label, steps, values in series:
        ax.plot(steps, values, lw=1.2, marker="o" if markers else None, ms=3, label=label)
    if log_y and all((values > 0).all() for _, _, values in series if len(values)):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)
