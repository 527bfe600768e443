"""10-fold pair verification, computed exactly as InsightFace's ``eval/verification.py``.

Protocol (``evaluate_verification``):

* embeddings are the flip-summed raw embeddings of the ``2P`` images of ``P`` pairs
  (pair ``i`` = images ``2i`` and ``2i + 1``), converted to float64 and L2-normalised;
* the pair distance is the squared L2 distance of the normalised embeddings (0 to 4);
  a pair is predicted "same" when ``distance < threshold``;
* folds are ``KFold(n_folds, shuffle=False)``: contiguous, in order, the first
  ``P % n_folds`` folds one pair longer;
* for each fold, the threshold in ``np.arange(0, 4, 0.01)`` with the best accuracy on the
  other folds (the first maximum) is applied to the fold; accuracy is the mean and the
  (population) std of the ten fold accuracies;
* VAL at FAR (1e-3): for each fold, the thresholds ``np.arange(0, 4, 0.001)`` give the FAR on
  the training folds; the threshold reaching the target FAR is found by linear interpolation
  of threshold against FAR (scipy ``interp1d(kind="slinear")``, reproduced here), or 0 when
  the target FAR is never reached; VAL and FAR are measured on the test fold;
* XNorm is the mean L2 norm of every raw embedding (original and mirrored views).

Everything is vectorised over pairs and thresholds (cumulative counts per fold), so the
result is identical to InsightFace's per-threshold loops at a fraction of the cost.
"""
from __future__ import annotations

import dataclasses

import numpy as np

ACCURACY_THRESHOLDS = np.arange(0, 4, 0.01)
"""Distance thresholds searched for the best accuracy (InsightFace's)."""
VAL_THRESHOLDS = np.arange(0, 4, 0.001)
"""Distance thresholds used to reach the target FAR (InsightFace's)."""


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    """Everything :func:`evaluate_verification` computes."""

    accuracy: float
    """Mean of the test-fold accuracies."""
    accuracy_std: float
    """Population std (``np.std``) of the test-fold accuracies."""
    fold_accuracies: np.ndarray
    """``(n_folds,)`` accuracy of each test fold."""
    best_thresholds: np.ndarray
    """``(n_folds,)`` the distance threshold chosen on the training folds of each fold."""
    val: float
    """Mean over folds of the VAL (TAR) at the target FAR."""
    val_std: float
    far: float
    """Mean over folds of the FAR actually obtained on the test folds."""
    far_target: float
    tpr: np.ndarray
    """``(T,)`` TPR at each of ``ACCURACY_THRESHOLDS``, averaged over test folds."""
    fpr: np.ndarray
    distances: np.ndarray
    """``(P,)`` squared L2 distance of each pair's normalised embeddings."""
    issame: np.ndarray
    xnorm: float
    """Mean L2 norm of the raw embeddings (all views); NaN when no views were given."""


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float64 exactly as ``sklearn.preprocessing.normalize`` (zero rows stay 0)."""
    from sklearn.preprocessing import normalize

    return normalize(np.asarray(x, dtype=np.float64))


def pair_distances(embeddings: np.ndarray) -> np.ndarray:
    """Squared L2 distances ``(P,)`` of the normalised rows ``2i`` and ``2i+1`` of ``(2P, D)`` embeddings."""
    emb = normalize_rows(embeddings)
    diff = np.subtract(emb[0::2], emb[1::2])
    return np.sum(np.square(diff), 1)


def fold_ids(n: int, n_folds: int) -> np.ndarray:
    """Fold index of each of ``n`` items, as ``KFold(n_folds, shuffle=False)`` splits them."""
    if n_folds < 2:
        return np.zeros(n, dtype=np.int64)
    if n < n_folds:
        raise ValueError(f"cannot split {n} pairs into {n_folds} folds")
    sizes = np.full(n_folds, n // n_folds, dtype=np.int64)
    sizes[: n % n_folds] += 1
    return np.repeat(np.arange(n_folds), sizes)


def _fold_counts(dist: np.ndarray, issame: np.ndarray, folds: np.ndarray, n_folds: int,
                 thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per fold and threshold: (true accepts, false accepts), each ``(n_folds, T)`` int64.

    A pair is accepted at threshold ``j`` iff ``dist < thresholds[j]``, i.e. iff
    ``j >= searchsorted(thresholds, dist, 'right')``; cumulative counts give every threshold.
    """
    t = len(thresholds)
    first = np.searchsorted(thresholds, dist, side="right")  # in 0..T; NaN -> T (never)
    key = folds * (t + 1) + first
    same = np.bincount(key[issame], minlength=n_folds * (t + 1)).reshape(n_folds, t + 1)
    diff = np.bincount(key[~issame], minlength=n_folds * (t + 1)).reshape(n_folds, t + 1)
    return np.cumsum(same, axis=1)[:, :t], np.cumsum(diff, axis=1)[:, :t]


def kfold_accuracy(dist: np.ndarray, issame: np.ndarray, n_folds: int = 10,
                   thresholds: np.ndarray = ACCURACY_THRESHOLDS
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """InsightFace's ``calculate_roc``: returns (fold accuracies, best threshold index per fold,
    mean TPR per threshold, mean FPR per threshold)."""
    issame = np.asarray(issame, dtype=bool)
    n = min(len(issame), len(dist))
    dist, issame = dist[:n], issame[:n]
    folds = fold_ids(n, n_folds)
    n_folds_eff = n_folds if n_folds >= 2 else 1
    tp, fp = _fold_counts(dist, issame, folds, n_folds_eff, thresholds)
    n_same = np.bincount(folds[issame], minlength=n_folds_eff)[:, None]
    n_diff = np.bincount(folds[~issame], minlength=n_folds_eff)[:, None]
    size = n_same + n_diff
    tn = n_diff - fp
    test_acc = (tp + tn) / size
    if n_folds < 2:  # LFold(1): train on everything, test on everything
        train_acc = test_acc
    else:
        tp_tr = tp.sum(0, keepdims=True) - tp
        tn_tr = tn.sum(0, keepdims=True) - tn
        train_acc = (tp_tr + tn_tr) / (size.sum() - size)
    best = np.argmax(train_acc, axis=1)
    accuracy = test_acc[np.arange(n_folds_eff), best]
    with np.errstate(invalid="ignore", divide="ignore"):
        tprs = np.where(n_same == 0, 0.0, tp / np.maximum(n_same, 1))
        fprs = np.where(n_diff == 0, 0.0, fp / np.maximum(n_diff, 1))
    return accuracy, best, np.mean(tprs, 0), np.mean(fprs, 0)


def slinear_interp(x: np.ndarray, y: np.ndarray, value: float) -> float:
    """``scipy.interpolate.interp1d(x, y, kind="slinear")(value)`` for non-decreasing ``x``
    (duplicates allowed) and ``x[0] <= value <= x[-1]``, with the same floating-point steps
    (a degree-1 B-spline with knots ``[x0, x..., x_last]``, evaluated by de Boor's recursion)."""
    m = len(x)
    a = min(int(np.searchsorted(x, value, side="right")) - 1, m - 2)
    xa, xb = x[a], x[a + 1]
    if xb == xa:
        return 0.0
    w = 1.0 / (xb - xa)
    return (0.0 + y[a] * (w * (xb - value))) + y[a + 1] * (w * (value - xa))


def val_at_far(dist: np.ndarray, issame: np.ndarray, far_target: float = 1e-3, n_folds: int = 10,
               thresholds: np.ndarray = VAL_THRESHOLDS) -> tuple[float, float, float, np.ndarray]:
    """InsightFace's ``calculate_val``: (VAL mean, VAL std, FAR mean, threshold per fold).

    A fold whose test part has no same (or no different) pairs gets VAL (FAR) NaN, where
    InsightFace raises ZeroDivisionError.
    """
    issame = np.asarray(issame, dtype=bool)
    n = min(len(issame), len(dist))
    dist, issame = dist[:n], issame[:n]
    folds = fold_ids(n, n_folds)
    nf = max(int(folds.max()) + 1 if n else 1, 1)
    _, fa = _fold_counts(dist, issame, folds, nf, thresholds)
    n_diff = np.bincount(folds[~issame], minlength=nf)
    if nf > 1:
        fa_train = fa.sum(0, keepdims=True) - fa
        n_diff_train = n_diff.sum() - n_diff
    else:
        fa_train, n_diff_train = fa, n_diff
    with np.errstate(invalid="ignore", divide="ignore"):
        far_train = fa_train / n_diff_train[:, None].astype(np.float64)
    chosen = np.zeros(nf)
    for f in range(nf):  # one interpolation per fold
        if np.max(far_train[f]) >= far_target:
            chosen[f] = slinear_interp(far_train[f], thresholds, far_target)
    accept = dist[None, :] < chosen[:, None]  # (nf, n)
    in_fold = folds[None, :] == np.arange(nf)[:, None]
    ta = np.sum(accept & in_fold & issame, axis=1)
    fa_test = np.sum(accept & in_fold & ~issame, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = ta / np.sum(in_fold & issame, axis=1).astype(np.float64)
        far = fa_test / np.sum(in_fold & ~issame, axis=1).astype(np.float64)
    return float(np.mean(val)), float(np.std(val)), float(np.mean(far)), chosen


def xnorm(views: np.ndarray) -> float:
    """Mean L2 norm of every raw embedding in ``views`` (``(V, N, D)`` or ``(N, D)``)."""
    v = np.asarray(views, dtype=np.float64)
    v = v.reshape(-1, v.shape[-1])
    return float(np.mean(np.sqrt(np.einsum("ij,ij->i", v, v)))) if len(v) else float("nan")


def evaluate_verification(embeddings: np.ndarray, issame: np.ndarray, *, n_folds: int = 10,
                          far_target: float = 1e-3, views: np.ndarray | None = None) -> VerificationResult:
    """InsightFace's verification protocol on ``(2P, D)`` flip-summed embeddings and ``(P,)`` labels.

    ``views`` (``(V, 2P, D)`` raw embeddings) is only used for XNorm. See the module docstring.
    """
    issame = np.asarray(issame, dtype=bool).reshape(-1)
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] != 2 * len(issame):
        raise ValueError(f"expected ({2 * len(issame)}, D) embeddings for {len(issame)} pairs, "
                         f"got {embeddings.shape}")
    dist = pair_distances(embeddings)
    acc, best, tpr, fpr = kfold_accuracy(dist, issame, n_folds)
    val, val_std, far, _ = val_at_far(dist, issame, far_target, n_folds)
    return VerificationResult(
        accuracy=float(np.mean(acc)), accuracy_std=float(np.std(acc)), fold_accuracies=acc,
        best_thresholds=ACCURACY_THRESHOLDS[best], val=val, val_std=val_std, far=far,
        far_target=far_target, tpr=tpr, fpr=fpr, distances=dist, issame=issame,
        xnorm=xnorm(views) if views is not None else float("nan"),
    )
