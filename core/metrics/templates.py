"""IJB template features and template-pair scores, as InsightFace's IJB scripts compute them.

Pipeline (InsightFace ``eval_ijbc.py``):

1. :func:`image_features`: per image, the flip-sum of the raw embeddings (``flip``), optionally
   L2-normalised (``norm_score=False``), optionally multiplied by the detector score.
2. :func:`pool_templates`: within a template, images of one media are averaged; the media
   features are summed; the template feature is L2-normalised. Sums run in the features'
   dtype in the same order as InsightFace (images in file order, medias by increasing id),
   so the pooled features are bitwise identical to its loops.
3. :func:`score_pairs`: cosine similarity of each template pair, in chunks with bounded
   memory. When the pairs are dense in (first template x second template) -- as IJB-B/C's
   enrolment x verification pairs are -- blocks are scored with one matrix product each
   (float64, as InsightFace), otherwise pair by pair.
"""
from __future__ import annotations

import numpy as np


def image_features(raw: np.ndarray, raw_flip: np.ndarray | None = None, face_scores: np.ndarray | None = None, *,
                   flip: bool = True, norm_score: bool = True, detector_score: bool = True) -> np.ndarray:
    """Per-image features ``(N, D)`` for pooling (InsightFace's F1/N1/D1 test modes by default).

    ``norm_score=True`` keeps the embedding norm (a quality weight); False normalises first.
    ``detector_score=True`` multiplies by ``face_scores`` (the detector's faceness score).
    """
    feats = raw + raw_flip if (flip and raw_flip is not None) else raw
    if not norm_score:
        feats = feats / np.sqrt(np.sum(feats ** 2, -1, keepdims=True))
    if detector_score:
        if face_scores is None:
            raise ValueError("detector_score needs face_scores")
        feats = feats * np.asarray(face_scores, dtype=feats.dtype)[:, np.newaxis]
    return feats


def _segments(keys: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in sorted ``keys``."""
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)


def segment_sums(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of the row runs ``x[starts[i]:starts[i+1]]`` (the last run ends at ``len(x)``).

    Rows are added one after another, ``((x0 + x1) + x2) + ...`` in ``x``'s dtype, exactly as
    ``np.sum(run, axis=0)`` does (``np.add.reduceat`` orders the additions differently). Loops
    over the position within a run (as many steps as the longest run), vectorised over runs.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.diff(np.r_[starts, len(x)])
    by_length = np.argsort(-lengths, kind="stable")
    s_sorted, l_sorted = starts[by_length], lengths[by_length]
    acc = x[s_sorted].copy()
    longest = int(l_sorted[0]) if len(l_sorted) else 0
    for j in range(1, longest):
        k = int(np.searchsorted(-l_sorted, -j, side="left"))  # runs with length > j
        acc[:k] += x[s_sorted[:k] + j]
    out = np.empty_like(acc)
    out[by_length] = acc
    return out


def pool_templates(img_feats: np.ndarray, templates: np.ndarray, medias: np.ndarray, *,
                   select: np.ndarray | None = None, weights: np.ndarray | None = None,
                   chunk_images: int = 32768, threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(template features (T, D) float64 L2-normalised, unique template ids (T,))``.

    ``select`` restricts pooling to these template ids (those without images are an error of
    the caller: see :func:`missing_templates`). ``weights`` (per image, e.g. detector scores)
    multiplies each image's feature on the fly: the same result as pooling
    ``image_features(..., detector_score=True)`` without building that array. Works through
    the images in chunks of about ``chunk_images`` (whole templates per chunk, ``threads``
    chunks at a time), so memory stays bounded.
    """
    from concurrent.futures import ThreadPoolExecutor

    from facebone.metrics.verification import normalize_rows

    templates = np.asarray(templates).reshape(-1)
    medias = np.asarray(medias).reshape(-1)
    if not (len(templates) == len(medias) == len(img_feats)):
        raise ValueError(f"{len(img_feats)} features, {len(templates)} template ids, {len(medias)} media ids")
    index = np.arange(len(templates))
    if select is not None:
        index = index[np.isin(templates, np.unique(select))]
    order = index[np.lexsort((medias[index], templates[index]))]  # stable: file order within a media
    t_sorted, m_sorted = templates[order], medias[order]
    media_start = np.flatnonzero(np.r_[True, (t_sorted[1:] != t_sorted[:-1]) | (m_sorted[1:] != m_sorted[:-1])]) \
        if len(order) else np.zeros(0, np.int64)
    template_start = _segments(t_sorted)
    unique_templates = t_sorted[template_start]
    out = np.zeros((len(unique_templates), img_feats.shape[1]), dtype=np.float64)
    # chunk boundaries on template starts
    bounds = [0]
    for b in template_start[1:]:
        if b - bounds[-1] >= chunk_images:
            bounds.append(int(b))
    bounds.append(len(order))
    if weights is not None:
        weights = np.asarray(weights, dtype=img_feats.dtype).reshape(-1)
    t_first = np.searchsorted(template_start, bounds[:-1])  # output row of each chunk's first template

    def work(c: int) -> None:
        lo, hi = bounds[c], bounds[c + 1]
        if hi <= lo:
            return
        idx = order[lo:hi]
        feats = img_feats[idx]
        if weights is not None:
            feats *= weights[idx, None]
        ms = media_start[np.searchsorted(media_start, lo):np.searchsorted(media_start, hi)] - lo
        sums = segment_sums(feats, ms)
        counts = np.diff(np.r_[ms, hi - lo])
        sums /= counts[:, None].astype(sums.dtype)  # media mean in the features' dtype (x / 1 == x)
        ts = template_start[np.searchsorted(template_start, lo):np.searchsorted(template_start, hi)]
        pooled = segment_sums(sums, np.searchsorted(ms, ts - lo))
        out[t_first[c]:t_first[c] + len(ts)] = pooled

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(work, range(len(bounds) - 1)))
    return normalize_rows(out), unique_templates


def missing_templates(wanted: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Template ids in ``wanted`` that have no image (not in ``available``)."""
    wanted = np.unique(wanted)
    return wanted[~np.isin(wanted, available)]


def template_rows(unique_templates: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in sorted ``unique_templates``; KeyError naming the first unknown id."""
    unique_templates = np.asarray(unique_templates)
    ids = np.asarray(ids).reshape(-1)
    if len(unique_templates) == 0:
        if len(ids):
            raise KeyError(int(ids[0]))
        return np.zeros(0, np.int64)
    rows = np.minimum(np.searchsorted(unique_templates, ids), len(unique_templates) - 1)
    bad = unique_templates[rows] != ids
    if bad.any():
        raise KeyError(int(ids[np.flatnonzero(bad)[0]]))
    return rows


def _compact_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ids, sorted; index of each entry among them), with a lookup table when ids are
    small non-negative integers (as IJB template ids are), else with one sort."""
    ids = np.asarray(ids).reshape(-1)
    lo, hi = (int(ids.min()), int(ids.max())) if len(ids) else (0, 0)
    if lo >= 0 and hi < max(1 << 24, 4 * len(ids)):
        present = np.zeros(hi + 1, dtype=bool)
        present[ids] = True
        used = np.flatnonzero(present)
        lut = np.zeros(hi + 1, dtype=np.int32 if len(used) < (1 << 31) else np.int64)
        lut[used] = np.arange(len(used))
        return used, lut[ids]
    return np.unique(ids, return_inverse=True)


def score_pairs(feats: np.ndarray, unique_templates: np.ndarray, p1: np.ndarray, p2: np.ndarray, *,
                chunk_bytes: int = 64 << 20, dense_factor: float = 16.0) -> np.ndarray:
    """Cosine similarity ``(P,)`` float64 of template pairs ``(p1[i], p2[i])``.

    ``feats`` are normalised template features in the order of ``unique_templates`` (sorted).
    Memory beyond the inputs and output stays around ``chunk_bytes`` plus a few int arrays of
    length P. Raises KeyError naming a template id that has no feature.
    """
    feats = np.asarray(feats, dtype=np.float64)
    n = len(np.asarray(p1).reshape(-1))
    score = np.empty(n, dtype=np.float64)
    if n == 0:
        return score
    ids1, i1 = _compact_ids(p1)  # each distinct template once; rows looked up for those only
    ids2, i2 = _compact_ids(p2)
    u1 = template_rows(unique_templates, ids1)
    u2 = template_rows(unique_templates, ids2)
    d = feats.shape[1]
    if len(u1) * len(u2) <= dense_factor * n:
        f2t = feats[u2].T  # a transposed view: BLAS reads it as is
        block = max(1, int(chunk_bytes // (8 * max(len(u2), d))))
        n_blocks = -(-len(u1) // block)
        block_of = (i1 // block).astype(np.uint16 if n_blocks < (1 << 16) else np.int64)
        grouped = bool(np.all(block_of[1:] >= block_of[:-1]))  # pair lists sorted by first template
        order = None if grouped else np.argsort(block_of, kind="stable")  # radix sort for uint16
        bounds = np.r_[0, np.cumsum(np.bincount(block_of, minlength=n_blocks))]
        width = len(u2)
        for b in range(n_blocks):
            sel = slice(bounds[b], bounds[b + 1]) if order is None else order[bounds[b]:bounds[b + 1]]
            if bounds[b + 1] == bounds[b]:
                continue
            lo = b * block
            sims = feats[u1[lo:lo + block]] @ f2t
            flat = (i1[sel] - lo).astype(np.int64)
            flat *= width
            flat += i2[sel]
            score[sel] = sims.reshape(-1)[flat]
    else:
        step = max(1, int(chunk_bytes // (16 * d)))
        for lo in range(0, n, step):
            a = feats[u1[i1[lo:lo + step]]]
            b = feats[u2[i2[lo:lo + step]]]
            score[lo:lo + step] = np.sum(a * b, -1)  # as InsightFace (bitwise)
    return score
