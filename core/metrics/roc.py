"""ROC curves and TPR at FPR, as InsightFace's IJB scripts report them.

:func:`roc_curve` returns the same arrays as ``sklearn.metrics.roc_curve(labels, scores)``
(``drop_intermediate=True``: collinear points removed), computed from one sort of the score values.

:func:`tpr_at_fpr` follows InsightFace: **no interpolation**. For each target FPR it takes
the ROC point whose FPR is nearest to the target (``|fpr - target|`` smallest; among equal
distances the point with the largest TPR) and reports that point's TPR. When the ROC has
no point near a very small target (few negatives), the reported value belongs to a point
whose FPR may be far from the target; :func:`roc_points` returns the FPR actually used.
"""
from __future__ import annotations

import numpy as np

DEFAULT_FPRS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
"""The FPR columns of InsightFace's TPR@FPR table."""


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` for ``scores`` (higher = more likely the same identity).

    Identical to ``sklearn.metrics.roc_curve(labels, scores)``; ``thresholds[0]`` is ``inf``.
    FPR (TPR) is NaN when there is no negative (positive). One sort of the score values (no
    argsort): positives are located among the distinct values by binary search, and only the
    kept points' counts are computed.
    """
    labels = np.asarray(labels).reshape(-1) != 0
    scores = np.asarray(scores).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in length")
    n = len(scores)
    s = np.sort(scores)  # ascending
    new_value = s[1:] != s[:-1]
    ties = not bool(new_value.all())
    if ties:
        starts = np.flatnonzero(np.r_[True, new_value])  # first index of each distinct value
        values = s[starts]
    else:
        values = s
    k_count = len(values)
    # distinct values in descending order, as sklearn: index k <-> ascending index K-1-k
    pos_desc = np.sort(k_count - 1 - np.searchsorted(values, scores[labels]))
    if ties:
        dp = np.zeros(k_count, dtype=np.int32)
        np.add.at(dp, pos_desc, 1)
        if k_count > 2:
            # a point is kept where the (positives, negatives) increment changes (sklearn's second difference)
            sizes_desc = np.diff(np.r_[starts, n])[::-1]
            change = (dp[1:-1] != dp[2:]) | ((sizes_desc[1:-1] - dp[1:-1]) != (sizes_desc[2:] - dp[2:]))
            keep = np.flatnonzero(np.r_[True, change, True])
        else:
            keep = np.arange(k_count)
    elif k_count > 2:
        # no ties: every increment is (1, 0) or (0, 1), so only points next to a positive can be kept
        def dp_at(k: np.ndarray) -> np.ndarray:
            return np.searchsorted(pos_desc, k, side="right") - np.searchsorted(pos_desc, k, side="left")

        cand = np.unique(np.r_[pos_desc - 1, pos_desc])
        cand = cand[(cand >= 1) & (cand <= k_count - 2)]
        cand = cand[dp_at(cand) != dp_at(cand + 1)]
        keep = np.r_[0, cand, k_count - 1]
    else:
        keep = np.arange(k_count)
    tps = np.searchsorted(pos_desc, keep, side="right").astype(np.float64)
    seen = (n - starts[k_count - 1 - keep]) if ties else keep + 1  # scores >= the kept value
    fps = seen.astype(np.float64) - tps
    thresholds = values[k_count - 1 - keep].astype(np.float64)
    tps = np.r_[0.0, tps]
    fps = np.r_[0.0, fps]
    thresholds = np.r_[np.inf, thresholds]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thresholds


def roc_points(fpr: np.ndarray, tpr: np.ndarray, targets=DEFAULT_FPRS) -> tuple[np.ndarray, np.ndarray]:
    """InsightFace's nearest-point rule: ``(tpr, fpr actually used)`` for each target FPR."""
    fpr_r = fpr[::-1]
    tpr_r = tpr[::-1]
    targets = np.asarray(targets, dtype=np.float64)
    # argmin gives the first minimum in reversed order = the last ROC point (largest TPR)
    nearest = np.argmin(np.abs(fpr_r[None, :] - targets[:, None]), axis=1)
    return tpr_r[nearest], fpr_r[nearest]


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, targets=DEFAULT_FPRS) -> np.ndarray:
    """TPR at each target FPR, the ROC point nearest to it (no interpolation)."""
    return roc_points(fpr, tpr, targets)[0]


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under the ROC (trapezoidal, as ``sklearn.metrics.auc``)."""
    from sklearn.metrics import auc as _auc

    return float(_auc(fpr, tpr))


def eer(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Equal error rate: where FPR = 1 - TPR, linearly interpolated between ROC points."""
    fnr = 1.0 - tpr
    d = fpr - fnr  # increases along the ROC
    i = int(np.searchsorted(d, 0.0))
    if i == 0:
        return float(fpr[0])
    if i >= len(d):
        return float(fpr[-1])
    t = -d[i - 1] / (d[i] - d[i - 1]) if d[i] != d[i - 1] else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def roc_summary(labels: np.ndarray, scores: np.ndarray, targets=DEFAULT_FPRS) -> dict[str, float]:
    """``{"tpr@fpr=1e-06": .., ..., "auc": .., "eer": ..}`` for one score set."""
    fpr, tpr, _ = roc_curve(labels, scores)
    out = {f"tpr@fpr={format_rate(t)}": float(v) for t, v in zip(targets, tpr_at_fpr(fpr, tpr, targets))}
    out["auc"] = auc(fpr, tpr)
    out["eer"] = eer(fpr, tpr)
    return out


def format_rate(x: float) -> str:
    """1e-3 -> '1e-3', 0.01 -> '1e-2', 0.3 -> '0.3' (short, stable metric names)."""
    m, e = f"{x:.0e}".split("e")
    if float(f"{m}e{e}") == x and m == "1":
        return f"1e{int(e)}"
    return f"{x:g}"
