"""Baseline: a direct reimplementation of InsightFace's evaluation loops.

Written from the algorithms of ``recognition/arcface_torch/eval/verification.py``,
``recognition/arcface_torch/eval_ijbc.py`` and ``recognition/_evaluation_/ijb/ijb_evals.py``
(deepinsight/insightface), keeping their per-threshold, per-fold, per-template and per-probe
Python loops. Used by the tests (facebone's numbers must equal these) and by
``benchmarks/metrics.py`` (facebone must be much faster). Not part of the package.
"""
from __future__ import annotations

import numpy as np
from scipy import interpolate
from sklearn.metrics import auc, roc_curve
from sklearn.model_selection import KFold
from sklearn.preprocessing import normalize


# -- 10-fold verification ---------------------------------------------------------------

def _accuracy_at(threshold, dist, issame):
    predict = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict, issame))
    fp = np.sum(np.logical_and(predict, np.logical_not(issame)))
    tn = np.sum(np.logical_and(np.logical_not(predict), np.logical_not(issame)))
    fn = np.sum(np.logical_and(np.logical_not(predict), issame))
    tpr = 0 if (tp + fn == 0) else float(tp) / float(tp + fn)
    fpr = 0 if (fp + tn == 0) else float(fp) / float(fp + tn)
    return tpr, fpr, float(tp + tn) / dist.size


def _val_far_at(threshold, dist, issame):
    predict = np.less(dist, threshold)
    ta = np.sum(np.logical_and(predict, issame))
    fa = np.sum(np.logical_and(predict, np.logical_not(issame)))
    return float(ta) / float(np.sum(issame)), float(fa) / float(np.sum(np.logical_not(issame)))


def ref_kfold_accuracy(dist, issame, n_folds=10):
    thresholds = np.arange(0, 4, 0.01)
    issame = np.asarray(issame)
    tprs = np.zeros((n_folds, len(thresholds)))
    fprs = np.zeros((n_folds, len(thresholds)))
    accuracy = np.zeros(n_folds)
    best = np.zeros(n_folds, dtype=int)
    for f, (train, test) in enumerate(KFold(n_splits=n_folds, shuffle=False).split(np.arange(len(issame)))):
        acc_train = np.zeros(len(thresholds))
        for j, t in enumerate(thresholds):
            _, _, acc_train[j] = _accuracy_at(t, dist[train], issame[train])
        best[f] = np.argmax(acc_train)
        for j, t in enumerate(thresholds):
            tprs[f, j], fprs[f, j], _ = _accuracy_at(t, dist[test], issame[test])
        _, _, accuracy[f] = _accuracy_at(thresholds[best[f]], dist[test], issame[test])
    return accuracy, best, np.mean(tprs, 0), np.mean(fprs, 0)


def _interp1d_slinear(x, y, value):
    """``interp1d(x, y, kind="slinear")(value)`` as scipy computed it when InsightFace's script was
    written: a degree-1 B-spline with knots ``[x0, x..., x_last]`` (scipy >= 1.15 refuses the
    duplicated FAR values that this always meets, so the B-spline is built directly)."""
    order = np.argsort(x, kind="mergesort")
    x, y = np.asarray(x)[order], np.asarray(y)[order]
    assert x[0] <= value <= x[-1]
    spline = interpolate.BSpline(np.r_[x[0], x, x[-1]], y, 1)
    return spline(value)


def ref_val(dist, issame, far_target=1e-3, n_folds=10):
    thresholds = np.arange(0, 4, 0.001)
    issame = np.asarray(issame)
    val = np.zeros(n_folds)
    far = np.zeros(n_folds)
    for f, (train, test) in enumerate(KFold(n_splits=n_folds, shuffle=False).split(np.arange(len(issame)))):
        far_train = np.zeros(len(thresholds))
        for j, t in enumerate(thresholds):
            _, far_train[j] = _val_far_at(t, dist[train], issame[train])
        if np.max(far_train) >= far_target:
            threshold = _interp1d_slinear(far_train, thresholds, far_target)
        else:
            threshold = 0.0
        val[f], far[f] = _val_far_at(threshold, dist[test], issame[test])
    return np.mean(val), np.std(val), np.mean(far)


def ref_verification(views, issame, n_folds=10):
    """views: list of (2P, D) float64 raw embeddings (original, flipped). Returns a dict."""
    total, count = 0.0, 0
    for emb in views:
        for i in range(emb.shape[0]):
            total += np.linalg.norm(emb[i])
            count += 1
    emb = normalize(sum(views[1:], views[0]))
    dist = np.sum(np.square(np.subtract(emb[0::2], emb[1::2])), 1)
    acc, best, tpr, fpr = ref_kfold_accuracy(dist, issame, n_folds)
    val, val_std, far = ref_val(dist, issame, 1e-3, n_folds)
    return dict(accuracy=np.mean(acc), accuracy_std=np.std(acc), fold_accuracies=acc, best=best, tpr=tpr,
                fpr=fpr, val=val, val_std=val_std, far=far, xnorm=total / count, dist=dist)


# -- IJB 1:1 ---------------------------------------------------------------------------

def ref_image_features(raw, raw_flip, face_scores, use_flip=True, use_norm_score=True, use_detector_score=True):
    feats = raw + raw_flip if use_flip else raw
    if not use_norm_score:
        feats = feats / np.sqrt(np.sum(feats ** 2, -1, keepdims=True))
    if use_detector_score:
        feats = feats * face_scores[:, np.newaxis]
    return feats


def ref_template_features(img_feats, templates, medias):
    unique_templates = np.unique(templates)
    template_feats = np.zeros((len(unique_templates), img_feats.shape[1]))
    for c, uqt in enumerate(unique_templates):
        (ind_t,) = np.where(templates == uqt)
        face_feats = img_feats[ind_t]
        face_medias = medias[ind_t]
        unique_medias, counts = np.unique(face_medias, return_counts=True)
        media_feats = []
        for u, ct in zip(unique_medias, counts):
            (ind_m,) = np.where(face_medias == u)
            if ct == 1:
                media_feats += [face_feats[ind_m]]
            else:
                media_feats += [np.mean(face_feats[ind_m], axis=0, keepdims=True)]
        template_feats[c] = np.sum(np.array(media_feats), axis=0)
    return normalize(template_feats), unique_templates


def ref_pair_scores(template_norm_feats, unique_templates, p1, p2, batch=100000):
    template2id = np.zeros((max(unique_templates) + 1, 1), dtype=int)
    for c, uqt in enumerate(unique_templates):
        template2id[uqt] = c
    score = np.zeros((len(p1),))
    total = np.array(range(len(p1)))
    for s in [total[i:i + batch] for i in range(0, len(p1), batch)]:
        f1 = template_norm_feats[template2id[p1[s]]]
        f2 = template_norm_feats[template2id[p2[s]]]
        score[s] = np.sum(f1 * f2, -1).flatten()
    return score


def ref_tpr_at_fpr(label, score, targets=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)):
    fpr, tpr, _ = roc_curve(label, score)
    roc_auc = auc(fpr, tpr)
    fpr = np.flipud(fpr)
    tpr = np.flipud(tpr)
    out = []
    for x in targets:
        _, i = min(list(zip(abs(fpr - x), range(len(fpr)))))
        out.append(tpr[i])
    return np.array(out), roc_auc


# -- IJB 1:N ---------------------------------------------------------------------------

def ref_evaluation_1n(query_feats, gallery_feats, query_ids, reg_ids, fars):
    similarity = np.dot(query_feats, gallery_feats.T)
    top1 = top5 = top10 = 0
    pos_sims, neg_sims, non_gallery = [], [], []
    for index, qid in enumerate(query_ids):
        if qid in reg_ids:
            gl = np.argwhere(reg_ids == qid)[0, 0]
            order = np.argsort(similarity[index])[::-1]
            top1 += gl in order[:1]
            top5 += gl in order[:5]
            top10 += gl in order[:10]
            pos_sims.append(similarity[index][reg_ids == qid][0])
            neg_sims.append(similarity[index][reg_ids != qid])
        else:
            non_gallery.append(similarity[index])
    pos_sims, neg_sims, non_gallery = np.array(pos_sims), np.array(neg_sims), np.array(non_gallery)
    correct = pos_sims > neg_sims.max(1)
    ng_sorted = np.sort(non_gallery.max(1))[::-1]
    recalls = []
    for far in fars:
        th = ng_sorted[max(int(ng_sorted.shape[0] * far) - 1, 0)]
        recalls.append(np.logical_and(correct, pos_sims > th).sum() / pos_sims.shape[0])
    return top1, top5, top10, np.array(recalls)


def ref_identification_g1g2(probe_feats, probe_ids, g1_feats, g1_ids, g2_feats, g2_ids, fars):
    a = ref_evaluation_1n(probe_feats, g1_feats, probe_ids, g1_ids, fars)
    b = ref_evaluation_1n(probe_feats, g2_feats, probe_ids, g2_ids, fars)
    n = probe_feats.shape[0]
    return dict(top1=(a[0] + b[0]) / n, top5=(a[1] + b[1]) / n, top10=(a[2] + b[2]) / n, tpir=(a[3] + b[3]) / 2)
