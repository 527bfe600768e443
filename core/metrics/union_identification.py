"""BTNet's IJB-C 1:N (``eval_ijbc_1n_multi_reso.py``, research/btnet.md §3.3), a non-standard protocol.

The gallery is G1 and G2 together, so every probe of the mixed set has its mate (closed set):

* rank-k: the mate's score is among the ``k`` highest of the probe's row (ties in its favour);
* "TPIR at FAR f": ``k = ceil(Q * f)`` for ``Q`` probes; the threshold is the ``k``-th largest of
  **all** non-mated scores (every probe x gallery entry except the mates); TPIR is the
  fraction of probes whose mated score exceeds it. Its "false alarm rate" is thus normalised
  by the number of probes, not by the number of non-mated searches as the standard open-set
  FPIR is (:mod:`facebone.metrics.identification`, G1 and G2 apart), and a probe counts as
  found whether or not its mate is its top score.
"""
from __future__ import annotations

import math

import numpy as np

from facebone.errors import DataError


def union_identification(probe_feats: np.ndarray, probe_ids: np.ndarray, gallery_feats: np.ndarray,
                         gallery_ids: np.ndarray, *, fars=(0.01, 0.1), ranks=(1, 5, 10),
                         chunk: int = 4096) -> dict[str, float]:
    """``{"rank1": .., "tpir@far_per_probe=0.1": .., "threshold@far_per_probe=0.1": ..}``."""
    from facebone.metrics.roc import format_rate

    probe_ids = np.asarray(probe_ids).reshape(-1)
    gallery_ids = np.asarray(gallery_ids).reshape(-1)
    uniq, first, counts = np.unique(gallery_ids, return_index=True, return_counts=True)
    pos = np.minimum(np.searchsorted(uniq, probe_ids), len(uniq) - 1)
    bad = (uniq[pos] != probe_ids) | (counts[pos] != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"probe subject {probe_ids[i]} has {int((gallery_ids == probe_ids[i]).sum())} gallery "
                        "templates in G1+G2; BTNet's 1:N needs exactly one")
    mate = first[pos]
    q = len(probe_ids)
    need = [max(1, math.ceil(q * f)) for f in fars]
    keep = max(need)
    gallery = np.asarray(gallery_feats, dtype=np.float64)
    mated = np.empty(q)
    rank = np.empty(q, dtype=np.int64)
    top: np.ndarray = np.zeros(0)
    for lo in range(0, q, chunk):
        sim = np.asarray(probe_feats[lo:lo + chunk], dtype=np.float64) @ gallery.T
        rows = np.arange(len(sim))
        mated[lo:lo + chunk] = sim[rows, mate[lo:lo + chunk]]
        rank[lo:lo + chunk] = np.count_nonzero(sim > mated[lo:lo + chunk, None], axis=1)
        sim[rows, mate[lo:lo + chunk]] = -np.inf
        flat = np.concatenate([top, sim.reshape(-1)])
        top = np.partition(flat, len(flat) - keep)[-keep:] if len(flat) > keep else flat
    top = np.sort(top)[::-1]
    out = {f"rank{k}": float(np.mean(rank < k)) for k in ranks}
    for f, k in zip(fars, need):
        th = float(top[min(k, len(top)) - 1])
        out[f"tpir@far_per_probe={format_rate(f)}"] = float(np.mean(mated > th))
        out[f"threshold@far_per_probe={format_rate(f)}"] = th
    return out
