"""facebone.metrics.verification equals the reimplementation of InsightFace's loops."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import insightface_reference as ref  # noqa: E402

from facebone.metrics import verification as V  # noqa: E402


def _structured(p: int, d: int, seed: int, noise: float):
    """Pairs of images of identities: same pairs share a centre; std ``noise`` per image."""
    rng = np.random.default_rng(seed)
    issame = rng.random(p) < 0.5
    centres = rng.normal(size=(2 * p, d))
    a = centres[0::2]
    b = np.where(issame[:, None], a, centres[1::2])
    emb = np.empty((2 * p, d))
    emb[0::2], emb[1::2] = a, b
    view0 = emb + noise * rng.normal(size=emb.shape)
    view1 = emb + noise * rng.normal(size=emb.shape)
    return [view0 * 3.0, view1 * 3.0], issame


@pytest.mark.parametrize("kind,p,seed", [("random", 300, 0), ("structured", 400, 1), ("structured", 255, 2),
                                         ("easy", 300, 3)])
def test_verification_equals_insightface(kind, p, seed):
    if kind == "random":
        rng = np.random.default_rng(seed)
        views = [rng.normal(size=(2 * p, 16)), rng.normal(size=(2 * p, 16))]
        issame = rng.random(p) < 0.5
    else:
        views, issame = _structured(p, 32, seed, 1.0 if kind == "structured" else 0.3)
    expected = ref.ref_verification(views, issame)
    got = V.evaluate_verification(views[0] + views[1], issame, views=np.stack(views))
    assert got.accuracy == pytest.approx(expected["accuracy"], abs=1e-12)
    assert got.accuracy_std == pytest.approx(expected["accuracy_std"], abs=1e-12)
    np.testing.assert_array_equal(got.fold_accuracies, expected["fold_accuracies"])
    np.testing.assert_array_equal(got.best_thresholds, V.ACCURACY_THRESHOLDS[expected["best"]])
    np.testing.assert_array_equal(got.tpr, expected["tpr"])
    np.testing.assert_array_equal(got.fpr, expected["fpr"])
    assert got.val == expected["val"] and got.val_std == expected["val_std"] and got.far == expected["far"]
    assert got.xnorm == pytest.approx(expected["xnorm"], rel=1e-12)
    np.testing.assert_array_equal(got.distances, expected["dist"])
    if kind == "easy":
        assert got.accuracy > 0.95
        assert got.val > 0.5


def test_val_with_reachable_far_exactly():
    # 10 folds of 200 pairs, 100 different per fold -> 900 training different pairs; far_target 1/900
    rng = np.random.default_rng(5)
    dist = np.round(rng.random(2000) * 4, 2)  # many ties on the threshold grid
    issame = np.tile(np.r_[np.ones(100, bool), np.zeros(100, bool)], 10)
    for target in (1 / 900, 0.05):
        got = V.val_at_far(dist, issame, target)[:3]
        want = ref.ref_val(dist, issame, target)
        assert got == pytest.approx(want, abs=0, rel=0)


def test_slinear_interp_matches_scipy_with_duplicates():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = np.sort(rng.integers(0, 6, size=12)) / 5.0  # duplicates
        y = np.sort(rng.random(12))
        v = float(rng.choice(np.r_[x, rng.uniform(x[0], x[-1], 3)]))
        assert V.slinear_interp(x, y, v) == float(ref._interp1d_slinear(x, y, v))


def test_fold_ids_match_kfold():
    from sklearn.model_selection import KFold

    for n in (10, 37, 600, 6001):
        ids = V.fold_ids(n, 10)
        for f, (_, test) in enumerate(KFold(10, shuffle=False).split(np.arange(n))):
            np.testing.assert_array_equal(np.flatnonzero(ids == f), test)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="pairs"):
        V.evaluate_verification(np.zeros((5, 4)), np.zeros(3, bool))
