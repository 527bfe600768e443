"""Benchmark: facebone.metrics vs a direct reimplementation of InsightFace's loops.

Two measurements, each in one run against the baseline (``insightface_reference.py``):

1. 10-fold verification on 6,000 pairs (LFW size), 512-d embeddings.
2. IJB-C 1:1 from image features: template pooling + pair scoring + ROC/TPR@FPR table, on a
   synthetic IJB-C of full size (469,375 images, 23,124 templates: 3,531 enrolment x 19,593
   verification, 15,658,489 pairs of which 19,557 genuine).

Prints JSON: times, ratios and the largest difference in every reported number.
Usage: ``python benchmarks/metrics.py [--scale 1.0] [--threads 2] [--skip-baseline-ijb]``
(``--scale`` shrinks the IJB-C counts for a quick check).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def bench_verification(rng: np.random.Generator) -> dict:
    import insightface_reference as ref
    from facebone.metrics.verification import evaluate_verification

    p, d = 6000, 512
    issame = np.arange(p) % 2 == 0
    centres = rng.normal(size=(2 * p, d))
    a = centres[0::2]
    b = np.where(issame[:, None], a, centres[1::2])
    emb = np.empty((2 * p, d))
    emb[0::2], emb[1::2] = a, b
    views = [emb + 4.0 * rng.normal(size=emb.shape), emb + 4.0 * rng.normal(size=emb.shape)]
    want, t_ref = _timed(ref.ref_verification, views, issame)
    stacked = np.stack(views)
    evaluate_verification(stacked.sum(0), issame, views=stacked)  # warm-up (imports, first-call costs)
    t_fb = float("inf")
    for _ in range(3):  # best of three
        got, t = _timed(lambda: evaluate_verification(stacked.sum(0), issame, views=stacked))
        t_fb = min(t_fb, t)
    diffs = {
        "accuracy": abs(got.accuracy - want["accuracy"]),
        "accuracy_std": abs(got.accuracy_std - want["accuracy_std"]),
        "best_threshold_choices_differing": int(np.sum(got.best_thresholds != np.arange(0, 4, 0.01)[want["best"]])),
        "val": abs(got.val - want["val"]), "val_std": abs(got.val_std - want["val_std"]),
        "far": abs(got.far - want["far"]), "xnorm": abs(got.xnorm - want["xnorm"]),
        "tpr_curve": float(np.max(np.abs(got.tpr - want["tpr"]))),
    }
    return {"pairs": p, "dim": d, "accuracy": got.accuracy, "val@far1e-3": got.val, "baseline_s": t_ref,
            "facebone_s": t_fb, "speedup": t_ref / t_fb, "max_abs_diff": diffs}


def synthetic_ijbc(rng: np.random.Generator, scale: float = 1.0, d: int = 512):
    """Image features, face scores, template/media ids, pairs and labels with IJB-C's counts."""
    n_img = int(469_375 * scale)
    n_enrol = int(3_531 * scale)
    n_verif = int(19_593 * scale)
    n_pairs = int(15_658_489 * scale)
    n_genuine = int(19_557 * scale)
    n_t = n_enrol + n_verif
    tids = rng.permutation(np.arange(n_t) * 2 + 1)  # non-contiguous ids
    subject = np.r_[np.arange(n_enrol), rng.integers(0, n_enrol, n_verif)]
    img_t = np.r_[np.arange(n_t), rng.integers(0, n_t, n_img - n_t)]
    rng.shuffle(img_t)
    templates = tids[img_t]
    medias = img_t * 16 + rng.integers(0, 6, n_img)  # up to six media per template, videos of many frames
    centres = rng.standard_normal((n_enrol, d), dtype=np.float32)
    feats = np.empty((n_img, d), dtype=np.float32)
    for lo in range(0, n_img, 65536):
        sl = slice(lo, lo + 65536)
        feats[sl] = centres[subject[img_t[sl]]] * 0.12
        feats[sl] += rng.standard_normal((len(img_t[sl]), d), dtype=np.float32)
        feats[sl] *= 18.0
    face_scores = rng.uniform(0.5, 1.0, n_img).astype(np.float32)
    verif = np.arange(n_enrol, n_t)
    gen_v = verif[rng.permutation(n_verif)[:n_genuine]]
    gen_e = subject[gen_v]
    imp_e = rng.integers(0, n_enrol, n_pairs - n_genuine)
    imp_v = rng.integers(n_enrol, n_t, n_pairs - n_genuine)
    clash = subject[imp_v] == imp_e
    imp_e[clash] = (imp_e[clash] + 1) % n_enrol
    e = np.r_[gen_e, imp_e]
    v = np.r_[gen_v, imp_v]
    order = np.lexsort((v, e))  # pair files list each enrolment template's pairs together
    p1, p2 = tids[e[order]], tids[v[order]]
    label = (subject[e] == subject[v])[order].astype(np.int64)
    return feats, face_scores, templates, medias, p1, p2, label


def facebone_ijb(feats, face_scores, templates, medias, p1, p2, label):
    from facebone.metrics import roc, templates as T

    times = {}
    t = time.perf_counter()
    tf, ids = T.pool_templates(feats, templates, medias, weights=face_scores)  # = image_features(detector_score)
    times["pool_s"] = time.perf_counter() - t
    t = time.perf_counter()
    score = T.score_pairs(tf, ids, p1, p2)
    times["score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    fpr, tpr, _ = roc.roc_curve(label, score)
    table = roc.tpr_at_fpr(fpr, tpr)
    area = roc.auc(fpr, tpr)
    times["roc_s"] = time.perf_counter() - t
    return tf, score, table, area, times


def baseline_ijb(feats, face_scores, templates, medias, p1, p2, label):
    import insightface_reference as ref

    times = {}
    t = time.perf_counter()
    x = ref.ref_image_features(feats, feats, face_scores, use_flip=False)
    tf, ids = ref.ref_template_features(x, templates, medias)
    times["pool_s"] = time.perf_counter() - t
    t = time.perf_counter()
    score = ref.ref_pair_scores(tf, ids, p1, p2)
    times["score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    table, area = ref.ref_tpr_at_fpr(label, score)
    times["roc_s"] = time.perf_counter() - t
    return tf, score, table, area, times


def bench_identification(rng: np.random.Generator, d: int = 512) -> dict:
    """IJB-C 1:N sizes from template features: G1 1,772 and G2 1,759 gallery templates, 19,593 mixed probes."""
    import insightface_reference as ref
    from sklearn.preprocessing import normalize

    from facebone.metrics.identification import identify_g1g2

    n1, n2, q = 1772, 1759, 19593
    centres = rng.standard_normal((n1 + n2, d))
    g_ids = np.arange(n1 + n2) + 10_000
    p_sub = rng.integers(0, n1 + n2, q)
    g1f = normalize(centres[:n1] + 1.0 * rng.standard_normal((n1, d)))
    g2f = normalize(centres[n1:] + 1.0 * rng.standard_normal((n2, d)))
    pf = normalize(centres[p_sub] + 2.0 * rng.standard_normal((q, d)))
    fpirs = [1e-3, 1e-2, 1e-1]
    want, t_ref = _timed(ref.ref_identification_g1g2, pf, g_ids[p_sub], g1f, g_ids[:n1], g2f, g_ids[n1:], fpirs)
    (got, _), t_fb = _timed(identify_g1g2, pf, g_ids[p_sub], g1f, g_ids[:n1], g2f, g_ids[n1:], fpirs=fpirs)
    diffs = {"rank1": abs(got["rank1"] - want["top1"]), "rank5": abs(got["rank5"] - want["top5"]),
             "rank10": abs(got["rank10"] - want["top10"]),
             "tpir": float(np.max(np.abs(np.array([got[k] for k in got if k.startswith("tpir")]) - want["tpir"])))}
    return {"probes": q, "gallery": [n1, n2], "metrics": got, "baseline_s": t_ref, "facebone_s": t_fb,
            "speedup": t_ref / t_fb, "max_abs_diff": diffs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of IJB-C's counts")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads")
    parser.add_argument("--skip-baseline-ijb", action="store_true", help="time only facebone on IJB-C")
    parser.add_argument("--skip-verification", action="store_true")
    parser.add_argument("--skip-identification", action="store_true")
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:  # pragma: no cover
        os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    rng = np.random.default_rng(0)
    result: dict = {"threads": args.threads, "cpus": os.cpu_count()}
    if not args.skip_verification:
        result["verification_6000_pairs"] = bench_verification(rng)
        print(json.dumps(result, indent=2), flush=True)
    if not args.skip_identification:
        result["ijbc_1toN_from_template_features"] = bench_identification(rng)
        print(json.dumps(result, indent=2), flush=True)
    data, t_gen = _timed(synthetic_ijbc, rng, args.scale)
    feats, face_scores, templates, medias, p1, p2, label = data
    ijb: dict = {"images": len(feats), "templates": int(len(np.unique(templates))),
                 "medias": int(len(np.unique(medias))), "pairs": int(len(p1)), "genuine": int(label.sum()),
                 "generate_s": t_gen}
    facebone_ijb(*synthetic_ijbc(np.random.default_rng(1), 0.002, d=8))  # warm-up (imports)
    tf, score, table, area, times = facebone_ijb(*data)
    ijb["facebone"] = {**times, "total_s": sum(times.values()), "tpr@fpr": table.tolist(), "auc": area}
    if not args.skip_baseline_ijb:
        rtf, rscore, rtable, rarea, rtimes = baseline_ijb(*data)
        ijb["baseline"] = {**rtimes, "total_s": sum(rtimes.values()), "tpr@fpr": rtable.tolist(), "auc": rarea}
        ijb["speedup"] = ijb["baseline"]["total_s"] / ijb["facebone"]["total_s"]
        ijb["max_abs_diff"] = {"template_features": float(np.max(np.abs(tf - rtf))),
                               "scores": float(np.max(np.abs(score - rscore))),
                               "tpr@fpr": float(np.max(np.abs(table - rtable))), "auc": abs(area - rarea)}
    result["ijbc_1to1_from_features"] = ijb
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
