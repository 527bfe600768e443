"""IJB template pooling and pair scoring equal InsightFace's loops."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import insightface_reference as ref  # noqa: E402

from facebone.metrics import roc, templates as T  # noqa: E402


def _ijb_like(seed: int, structured: bool, n: int = 3000, d: int = 48):
    rng = np.random.default_rng(seed)
    n_templates = 240
    tpl = rng.integers(0, n_templates, n) * 3 + 5  # sparse, unsorted ids
    med = rng.integers(0, 12, n) + 1000 * (rng.random(n) < 0.5)  # several images per media
    if structured:
        subject = (tpl // 3) % 40
        centres = rng.normal(size=(40, d)).astype(np.float32)
        raw = centres[subject] + 0.8 * rng.normal(size=(n, d)).astype(np.float32)
        flip = centres[subject] + 0.8 * rng.normal(size=(n, d)).astype(np.float32)
    else:
        subject = None
        raw = rng.normal(size=(n, d)).astype(np.float32)
        flip = rng.normal(size=(n, d)).astype(np.float32)
    scores = rng.random(n).astype(np.float32)
    return rng, tpl, med, raw, flip, scores, subject


@pytest.mark.parametrize("structured", [False, True])
@pytest.mark.parametrize("modes", [(True, True, True), (False, False, True), (True, False, False)])
def test_pooling_is_bitwise_insightface(structured, modes):
    _, tpl, med, raw, flip, fs, _ = _ijb_like(0, structured)
    flip_on, norm, det = modes
    f = T.image_features(raw, flip, fs, flip=flip_on, norm_score=norm, detector_score=det)
    fr = ref.ref_image_features(raw, flip, fs, flip_on, norm, det)
    np.testing.assert_array_equal(f, fr)
    got, ids = T.pool_templates(f, tpl, med, chunk_images=500)
    want, want_ids = ref.ref_template_features(fr, tpl, med)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(got, want)
    if det:  # weighting on the fly inside the pooling gives the same bits
        unweighted = T.image_features(raw, flip, fs, flip=flip_on, norm_score=norm, detector_score=False)
        fused, _ = T.pool_templates(unweighted, tpl, med, weights=fs, chunk_images=700, threads=3)
        np.testing.assert_array_equal(fused, want)


def test_segment_sums_is_sequential():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 7)).astype(np.float32)
    starts = np.array([0, 1, 4, 20, 21, 45])
    got = T.segment_sums(x, starts)
    for i, (a, b) in enumerate(zip(starts, np.r_[starts[1:], 50])):
        np.testing.assert_array_equal(got[i], np.sum(x[a:b], axis=0))


@pytest.mark.parametrize("structured", [False, True])
def test_pair_scores_and_tpr_table_equal_insightface(structured):
    rng, tpl, med, raw, flip, fs, subject = _ijb_like(1, structured)
    f = T.image_features(raw, flip, fs)
    feats, ids = T.pool_templates(f, tpl, med)
    # enrolment x verification layout (dense) and a random sparse pair list
    enrol, verif = ids[:60], ids[60:]
    p1 = np.repeat(enrol, len(verif))
    p2 = np.tile(verif, len(enrol))
    keep = rng.random(len(p1)) < 0.3
    p1, p2 = p1[keep], p2[keep]
    label = ((p1 // 3) % 40 == (p2 // 3) % 40) if structured else rng.random(len(p1)) < 0.1
    want = ref.ref_pair_scores(feats, ids, p1, p2)
    dense = T.score_pairs(feats, ids, p1, p2, chunk_bytes=4096 * 8)
    sparse = T.score_pairs(feats, ids, p1, p2, dense_factor=0.0, chunk_bytes=1 << 14)
    np.testing.assert_array_equal(sparse, want)
    perm = rng.permutation(len(p1))  # pairs not grouped by first template: the sorting path
    np.testing.assert_array_equal(T.score_pairs(feats, ids, p1[perm], p2[perm], chunk_bytes=4096 * 8), dense[perm])
    np.testing.assert_allclose(dense, want, rtol=0, atol=1e-14)
    for s in (dense, sparse):
        fpr, tpr, _ = roc.roc_curve(label, s)
        table, area = ref.ref_tpr_at_fpr(label, want)
        np.testing.assert_array_equal(roc.tpr_at_fpr(fpr, tpr), table)
        assert roc.auc(fpr, tpr) == pytest.approx(area, abs=1e-12)
    if structured:
        assert roc.auc(*roc.roc_curve(label, dense)[:2]) > 0.9


def test_unknown_template_in_pairs():
    feats = np.eye(3)
    with pytest.raises(KeyError, match="7"):
        T.score_pairs(feats, np.array([1, 2, 3]), np.array([1, 7]), np.array([2, 3]))


def test_missing_templates():
    np.testing.assert_array_equal(T.missing_templates(np.array([3, 1, 9, 9]), np.array([1, 2, 3])), [9])
