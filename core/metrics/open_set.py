"""Open-set 1:N identification as QMUL-SurvFace defines it (TPIR at rank r against FPIR).

``open_set_identification(mated, mated_ids, gallery, gallery_ids, unmated)`` with L2-normalised
features (research/btnet.md §3.4, following the SurvFace protocol and the BTNet script):

* ``S_K = K . G^T`` and ``S_U = U . G^T`` (cosines);
* a threshold grid of ``n`` points, ``linspace(min(min of every mated probe's top-r scores,
  min of the unmated probes' top scores), max of the unmated probes' top scores)``;
* ``TPIR_r(t)`` = fraction of mated probes whose true identity is among their top ``r``
  gallery identities **and** scores above ``t``;
* ``FPIR(t)`` = fraction of unmated probes whose top score is above ``t``;
* ``AUC`` = trapezoid of TPIR_r over FPIR on the grid (``sklearn.metrics.auc``);
* ``TPIR_r@FPIR=f`` = TPIR_r at the grid threshold whose FPIR is nearest ``f`` (first on ties).

Identities are matched by their raw ids; rows are processed in chunks (no per-probe loop).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from facebone.errors import DataError


@dataclasses.dataclass(frozen=True)
class OpenSetResult:
    thresholds: np.ndarray
    tpir: np.ndarray
    fpir: np.ndarray
    auc: float
    at_fpir: dict[float, float]
    rank1: float


def _top(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries per row, in descending order."""
    k = min(k, sim.shape[1])
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(sim, idx, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)


def open_set_identification(mated: np.ndarray, mated_ids: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray,
                            unmated: np.ndarray, *, rank: int = 20, n_thresholds: int = 1000,
                            fpirs=(0.3, 0.2, 0.1, 0.01), chunk: int = 8192) -> OpenSetResult:
    """See the module docstring; features are L2-normalised rows, ``gallery_ids`` unique."""
    from sklearn.metrics import auc

    gallery_ids = np.asarray(gallery_ids).reshape(-1)
    mated_ids = np.asarray(mated_ids).reshape(-1)
    if len(np.unique(gallery_ids)) != len(gallery_ids):
        raise ValueError("gallery ids must be unique (one prototype per identity)")
    order = np.argsort(gallery_ids)
    pos = np.searchsorted(gallery_ids, mated_ids, sorter=order)
    pos = np.minimum(pos, len(gallery_ids) - 1)
    truth = order[pos]
    missing = gallery_ids[truth] != mated_ids
    if missing.any():
        raise DataError(f"mated probe identity {mated_ids[np.flatnonzero(missing)[0]]} has no gallery prototype")
    gallery = np.asarray(gallery, dtype=np.float32)
    hit = np.full(len(mated_ids), -np.inf, dtype=np.float32)  # the true id's score if within the top `rank`
    top_min = np.inf
    rank1 = 0
    for lo in range(0, len(mated_ids), chunk):
        sim = np.asarray(mated[lo:lo + chunk], dtype=np.float32) @ gallery.T
        idx, vals = _top(sim, rank)
        top_min = min(top_min, float(vals.min()))
        is_true = idx == truth[lo:lo + chunk, None]
        found = is_true.any(axis=1)
        hit[lo:lo + chunk][found] = vals[is_true]
        rank1 += int(is_true[:, 0].sum())
    u_max = np.concatenate([(np.asarray(unmated[lo:lo + chunk], dtype=np.float32) @ gallery.T).max(axis=1)
                            for lo in range(0, len(unmated), chunk)]) if len(unmated) else np.zeros(0, np.float32)
    if len(u_max) == 0 or len(mated_ids) == 0:
        raise DataError("open-set identification needs mated and unmated probes")
    thresholds = np.linspace(min(top_min, float(u_max.min())), float(u_max.max()), n_thresholds).astype(np.float32)
    hits = np.sort(hit)
    tpir = (len(hits) - np.searchsorted(hits, thresholds, side="right")) / len(mated_ids)
    us = np.sort(u_max)
    fpir = (len(us) - np.searchsorted(us, thresholds, side="right")) / len(u_max)
    at = {float(f): float(tpir[int(np.argmin(np.abs(fpir - f)))]) for f in fpirs}
    return OpenSetResult(thresholds=thresholds, tpir=tpir, fpir=fpir, auc=float(auc(fpir, tpir)), at_fpir=at,
                         rank1=rank1 / len(mated_ids))
