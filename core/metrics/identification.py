"""1:N identification: CMC rank-k and open-set TPIR at FPIR, with IJB's two galleries.

Per gallery (:func:`identify`), following InsightFace's ``ijb_evals.py`` (``evaluation_1N``):

* similarity = probe features . gallery features (normalised template features);
* a probe is *mated* when its subject is in the gallery; its mate score is the score of the
  first gallery template of that subject, its non-mate scores those of other subjects;
* rank of a mated probe = how many gallery templates score strictly higher than its mate
  (ties count in the probe's favour; InsightFace's unstable argsort leaves them arbitrary);
  rank-k counts mated probes with rank < k;
* open set: the threshold at FPIR ``f`` is the ``max(int(n * f), 1)``-th largest top score of
  the ``n`` non-mated probes; TPIR is the fraction of mated probes whose mate outscores every
  non-mate and the threshold.

:func:`identify_g1g2` runs both galleries with the same (mixed) probes -- a probe whose
subject is in G2 is non-mated for G1 and vice versa -- and combines them as the IJB protocol
does: rank-k = (mated hits in G1 + in G2) / probes; TPIR = mean of the two galleries' TPIR.
"""
from __future__ import annotations

import dataclasses

import numpy as np

DEFAULT_FPIRS = (1e-3, 1e-2, 1e-1)
DEFAULT_RANKS = (1, 5, 10)


@dataclasses.dataclass(frozen=True)
class GalleryResult:
    """Identification against one gallery."""

    ranks: np.ndarray
    """``(mated probes,)`` 0-based rank of each mated probe's mate."""
    mated_scores: np.ndarray
    nonmated_top: np.ndarray
    """``(non-mated probes,)`` highest gallery score of each non-mated probe."""
    correct: np.ndarray
    """``(mated probes,)`` the mate outscores every non-mate."""
    fpirs: np.ndarray
    thresholds: np.ndarray
    tpir: np.ndarray
    n_probes: int

    def hits(self, k: int) -> int:
        """Mated probes whose mate is within the top ``k``."""
        return int(np.count_nonzero(self.ranks < k))


def identify(probe_feats: np.ndarray, probe_ids: np.ndarray, gallery_feats: np.ndarray, gallery_ids: np.ndarray,
             *, fpirs=DEFAULT_FPIRS, chunk: int = 4096) -> GalleryResult:
    """Identification of ``probe_feats`` (``(Q, D)``) against one gallery (``(G, D)``)."""
    probe_ids = np.asarray(probe_ids).reshape(-1)
    gallery_ids = np.asarray(gallery_ids).reshape(-1)
    gallery_feats = np.asarray(gallery_feats, dtype=np.float64)
    q = len(probe_ids)
    # first gallery index of each subject
    uniq, first = np.unique(gallery_ids, return_index=True)
    pos = np.searchsorted(uniq, probe_ids)
    pos = np.minimum(pos, max(len(uniq) - 1, 0))
    mated = (uniq[pos] == probe_ids) if len(uniq) else np.zeros(q, bool)
    mate_index = first[pos]
    ranks = np.empty(q, dtype=np.int64)
    mate = np.empty(q)
    best_nonmate = np.empty(q)
    for lo in range(0, q, chunk):
        sl = slice(lo, lo + chunk)
        sim = np.dot(np.asarray(probe_feats[sl], dtype=np.float64), gallery_feats.T)
        rows = np.arange(sim.shape[0])
        mate[sl] = sim[rows, mate_index[sl]]
        ranks[sl] = np.count_nonzero(sim > mate[sl, None], axis=1)
        same = gallery_ids[None, :] == probe_ids[sl, None]
        np.putmask(sim, same, -np.inf)
        best_nonmate[sl] = np.max(sim, axis=1)  # for a non-mated probe: its top score
    nonmated_top = np.sort(best_nonmate[~mated])[::-1]
    correct = mate[mated] > best_nonmate[mated]
    fpirs = np.asarray(fpirs, dtype=np.float64)
    n_nm = len(nonmated_top)
    if n_nm:
        thresholds = np.array([nonmated_top[max(int(n_nm * f) - 1, 0)] for f in fpirs.tolist()])
    else:
        thresholds = np.full(len(fpirs), np.nan)
    n_mated = int(mated.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tpir = np.sum(correct[None, :] & (mate[mated][None, :] > thresholds[:, None]), axis=1) / n_mated
    return GalleryResult(ranks=ranks[mated], mated_scores=mate[mated], nonmated_top=nonmated_top,
                         correct=correct, fpirs=fpirs, thresholds=thresholds, tpir=tpir, n_probes=q)


def cmc(results: list[GalleryResult], max_rank: int = 100) -> np.ndarray:
    """CMC ``(max_rank,)``: identification rate at rank 1..max_rank, hits summed over galleries / probes."""
    n = results[0].n_probes
    counts = np.zeros(max_rank, dtype=np.int64)
    for r in results:
        counts += np.bincount(np.minimum(r.ranks, max_rank), minlength=max_rank + 1)[:max_rank]
    return np.cumsum(counts) / n


def identify_g1g2(probe_feats: np.ndarray, probe_ids: np.ndarray, g1_feats: np.ndarray, g1_ids: np.ndarray,
                  g2_feats: np.ndarray, g2_ids: np.ndarray, *, fpirs=DEFAULT_FPIRS, ranks=DEFAULT_RANKS
                  ) -> tuple[dict[str, float], list[GalleryResult]]:
    """IJB 1:N with two galleries: ``({"rank1": .., "tpir@fpir=1e-2": .., ...}, [G1 result, G2 result])``."""
    from facebone.metrics.roc import format_rate

    results = [identify(probe_feats, probe_ids, g1_feats, g1_ids, fpirs=fpirs),
               identify(probe_feats, probe_ids, g2_feats, g2_ids, fpirs=fpirs)]
    n = len(np.asarray(probe_ids).reshape(-1))
    out: dict[str, float] = {}
    for k in ranks:
        out[f"rank{k}"] = sum(r.hits(k) for r in results) / n
    tpir = (results[0].tpir + results[1].tpir) / 2
    for f, t in zip(np.asarray(fpirs).tolist(), tpir.tolist()):
        out[f"tpir@fpir={format_rate(f)}"] = float(t)
    return out, results
