"""facebone.metrics.roc equals sklearn's roc_curve and InsightFace's TPR@FPR table."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_curve as sk_roc_curve

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import insightface_reference as ref  # noqa: E402

from facebone.metrics import roc  # noqa: E402


@pytest.mark.parametrize("case", ["random", "ties", "separable", "tiny", "two-tied", "three", "all-tied"])
def test_roc_and_tpr_at_fpr_equal_reference(case):
    rng = np.random.default_rng(0)
    n = 20000
    labels = rng.random(n) < 0.05
    if case == "random":
        scores = rng.normal(size=n) + 1.5 * labels
    elif case == "ties":
        scores = np.round(rng.normal(size=n) + 1.5 * labels, 1)  # many equal scores
    elif case == "separable":
        scores = labels + 0.01 * rng.random(n)
    elif case == "tiny":
        labels, scores = np.array([0, 1, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.4, 0.8])
    elif case == "two-tied":
        labels, scores = np.array([0, 1]), np.array([0.5, 0.5])
    elif case == "three":
        labels, scores = np.array([1, 0, 1]), np.array([0.2, 0.5, 0.7])
    else:
        labels, scores = labels, np.zeros(n)
    fpr, tpr, thr = roc.roc_curve(labels, scores)
    f2, t2, th2 = sk_roc_curve(labels, scores)
    np.testing.assert_array_equal(fpr, f2)
    np.testing.assert_array_equal(tpr, t2)
    np.testing.assert_array_equal(thr, th2)
    want, want_auc = ref.ref_tpr_at_fpr(labels, scores)
    np.testing.assert_array_equal(roc.tpr_at_fpr(fpr, tpr), want)
    assert roc.auc(fpr, tpr) == want_auc


def test_eer_of_symmetric_gaussians():
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(200000, bool), np.zeros(200000, bool)]
    scores = rng.normal(size=400000) + 2.0 * labels  # EER = Phi(-1) = 0.1587
    s = roc.roc_summary(labels, scores)
    assert s["eer"] == pytest.approx(0.158655, abs=3e-3)
    assert set(s) == {"tpr@fpr=1e-6", "tpr@fpr=1e-5", "tpr@fpr=1e-4", "tpr@fpr=1e-3", "tpr@fpr=1e-2",
                      "tpr@fpr=1e-1", "auc", "eer"}


def test_format_rate():
    assert [roc.format_rate(x) for x in (1e-6, 1e-3, 0.01, 0.1, 0.3, 2.5e-4)] == \
        ["1e-6", "1e-3", "1e-2", "1e-1", "0.3", "0.00025"]
