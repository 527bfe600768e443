"""Implementation of the ``ijb`` and ``ijb_identification`` evaluators (imported lazily)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from facebone.contracts import Embedder, EvalContext
from facebone.errors import DataError
from facebone.plugins.evaluators import ijb_meta


def _load_aligned(root: Path, names: list[str], matrices: np.ndarray, size: int, method: str,
                  first_line: int, listed_in: str) -> np.ndarray:
    """Decode (as ``cv2.imread``: EXIF orientation applied) and align images ``names``, the
    ``first_line``-th onwards of the meta file ``listed_in``."""
    from facebone.data.align import warp_affine
    from facebone.data.image_file import read_image

    out = np.empty((len(names), size, size, 3), dtype=np.uint8)
    for i, (name, m) in enumerate(zip(names, matrices)):
        try:
            rgb = read_image(root / "loose_crop" / name)
        except DataError as exc:
            raise DataError(f"{exc} (listed in {listed_in} line {first_line + i})") from None
        out[i] = warp_affine(rgb, m, size, method=method)
    return out


def extract_features(embedder: Embedder, root: Path, images: ijb_meta.ImageList, *, batch_size: int, workers: int,
                     image_size: int, flip: bool, desc: str, warp: str = "fixed",
                     sides: tuple = ()) -> tuple[np.ndarray, np.ndarray | None]:  # type: ignore[type-arg]
    """Raw embeddings ``(N, D)`` float32 of the aligned images, and of their mirrors when ``flip``.

    ``warp``: :func:`facebone.data.align.warp_affine`'s method. With ``sides`` (two
    :class:`~facebone.plugins.evaluators.resolution.Side`): the first array holds view 1 (the crop
    at side 1's resolution), the second the mirrored view 2. Streams: images are decoded and
    aligned by ``workers`` threads a batch ahead of the embedder.
    """
    from facebone.data.align import ARCFACE_TEMPLATE, similarity_transforms
    from facebone.progress import Progress

    template = ARCFACE_TEMPLATE * (image_size / 112.0)
    matrices = similarity_transforms(images.landmarks, template)
    bad = ~np.isfinite(matrices).all(axis=(1, 2))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{images.landmark_file}:{images.lines[i]}: the landmarks of image {images.names[i]!r} are "
                        "degenerate (no similarity transform maps them onto the template)")
    n = len(images.names)
    sub = max(1, batch_size // workers)
    raw = flipped = None
    with ThreadPoolExecutor(max_workers=workers) as pool, Progress(n, desc, unit="img") as progress:
        def submit(lo: int) -> list:
            hi = min(lo + batch_size, n)
            return [pool.submit(_load_aligned, root, images.names[a:min(a + sub, hi)], matrices[a:min(a + sub, hi)],
                                image_size, warp, int(images.lines[a]), images.landmark_file.name)
                    for a in range(lo, hi, sub)]

        pending = submit(0)
        for lo in range(0, n, batch_size):
            batch = np.concatenate([f.result() for f in pending])
            pending = submit(lo + batch_size) if lo + batch_size < n else []
            if sides:
                from facebone.plugins.evaluators.resolution import two_views

                views = two_views(embedder, batch, sides)
            else:
                views = np.asarray(embedder.views(batch), dtype=np.float32)
            if raw is None:
                d = views.shape[-1]
                raw = np.empty((n, d), np.float32)
                flipped = np.empty((n, d), np.float32) if flip else None
            raw[lo:lo + len(batch)] = views[0]
            if flip:
                flipped[lo:lo + len(batch)] = views[1] if len(views) > 1 else \
                    np.asarray(embedder.views(np.ascontiguousarray(batch[:, :, ::-1])), np.float32)[0]
            progress.update(len(batch))
    return raw, flipped


class _IJBBase:
    def __init__(self, options: Any):
        self.options = options
        self.root = Path(options.root).expanduser()
        self.prefix = options.target.lower()

    def _features(self, embedder: Embedder, images: ijb_meta.ImageList) -> np.ndarray:
        """Per-image features before detector weighting (applied during pooling: see ``_pool``)."""
        from facebone.metrics.templates import image_features

        o = self.options
        sides = o.sides() if o.resolutions else ()
        flip = o.flip or bool(sides)  # the two-view sum takes the place of the flip test
        raw, flipped = extract_features(embedder, self.root, images, batch_size=o.batch_size, workers=o.workers,
                                        image_size=o.image_size, flip=flip, desc=f"embed {o.target}",
                                        warp=o.warp, sides=sides)
        return image_features(raw, flipped, None, flip=flip, norm_score=o.norm_score, detector_score=False)

    def _pool(self, feats: np.ndarray, images: ijb_meta.ImageList, select: np.ndarray | None = None):  # type: ignore[no-untyped-def]
        from facebone.metrics.templates import pool_templates

        weights = images.face_scores if self.options.detector_score else None
        return pool_templates(feats, images.templates, images.medias, select=select, weights=weights)


class IJBVerification(_IJBBase):
    """1:1: ``evaluate(embedder, context) -> {"ijbc/tpr@fpr=1e-4": .., "ijbc/auc": .., ...}``."""

    def __call__(self, embedder: Embedder, context: EvalContext) -> dict[str, float]:
        from facebone.metrics import roc
        from facebone.metrics.artifacts import save_npy, save_summary
        from facebone.metrics.templates import score_pairs

        o = self.options
        images = ijb_meta.read_images(self.root, self.prefix)
        t1, t2, labels, _ = ijb_meta.read_pairs(self.root, self.prefix, images.templates)
        feats = self._features(embedder, images)
        tfeats, tids = self._pool(feats, images)
        scores = score_pairs(tfeats, tids, t1, t2)
        fpr, tpr, _ = roc.roc_curve(labels, scores)
        table, used = roc.roc_points(fpr, tpr, o.fprs)
        name = self.prefix
        metrics = {f"{name}/tpr@fpr={roc.format_rate(f)}": float(t) for f, t in zip(o.fprs, table)}
        metrics[f"{name}/auc"] = roc.auc(fpr, tpr)
        metrics[f"{name}/eer"] = roc.eer(fpr, tpr)
        out = Path(context.out_dir)
        save_npy(out / f"{name}_scores.npy", scores)
        save_npy(out / f"{name}_labels.npy", labels.astype(np.int8))
        sets = {name: {"scores": f"{name}_scores.npy", "labels": f"{name}_labels.npy", "pairs": int(len(labels)),
                       "score": "cosine similarity of template features", "roc": roc.roc_summary(labels, scores),
                       "fpr_used": {roc.format_rate(f): float(u) for f, u in zip(o.fprs, used)},
                       "images": len(images.names), "templates": int(len(tids))}}
        if o.plots:
            from facebone.metrics.plots import plot_roc

            plot_roc([(o.target, fpr, tpr)], out / f"{name}_roc.png", title=f"ROC on {o.target} 1:1",
                     xlim=(max(min(o.fprs), 1e-6), 1.0))
        save_summary(out, "ijb", metrics, sets, options={"flip": o.flip, "norm_score": o.norm_score,
                                                         "detector_score": o.detector_score})
        return metrics


class IJBIdentification(_IJBBase):
    """1:N: ``evaluate(embedder, context) -> {"ijbc_1n/rank1": .., "ijbc_1n/tpir@fpir=1e-2": .., ...}``."""

    def __call__(self, embedder: Embedder, context: EvalContext) -> dict[str, float]:
        from facebone.metrics.artifacts import save_npy, save_summary
        from facebone.metrics.identification import cmc, identify_g1g2
        o = self.options
        images = ijb_meta.read_images(self.root, self.prefix)
        g = ("G1", "G2") if o.target == "IJBC" else ("S1", "S2")
        g1 = ijb_meta.read_subjects(self.root, self.prefix, f"1N_gallery_{g[0]}.csv", images.templates)
        g2 = ijb_meta.read_subjects(self.root, self.prefix, f"1N_gallery_{g[1]}.csv", images.templates)
        probes = ijb_meta.read_subjects(self.root, self.prefix, "1N_probe_mixed.csv", images.templates)
        feats = self._features(embedder, images)
        pooled = [self._pool(feats, images, select=t)[0] for t, _ in (g1, g2, probes)]
        result, per_gallery = identify_g1g2(pooled[2], probes[1], pooled[0], g1[1], pooled[1], g2[1],
                                            fpirs=o.fpirs, ranks=o.ranks)
        name = f"{self.prefix}_1n"
        metrics = {f"{name}/{k}": float(v) for k, v in result.items()}
        if o.union_gallery:  # BTNet's closed-set variant, labelled apart (facebone.metrics.union_identification)
            from facebone.metrics.union_identification import union_identification

            union = union_identification(pooled[2], probes[1], np.concatenate(pooled[:2]),
                                         np.concatenate([g1[1], g2[1]]), fars=o.fpirs, ranks=o.ranks)
            metrics.update({f"{name}/union/{k}": v for k, v in union.items()})
        out = Path(context.out_dir)
        curve = cmc(per_gallery, max_rank=min(100, max(len(g1[0]), len(g2[0]))))
        save_npy(out / f"{name}_cmc.npy", curve)
        for tag, r in zip(g, per_gallery):
            save_npy(out / f"{name}_{tag}_mated_scores.npy", r.mated_scores)
            save_npy(out / f"{name}_{tag}_mated_ranks.npy", r.ranks)
            save_npy(out / f"{name}_{tag}_nonmated_top_scores.npy", r.nonmated_top)
        if o.plots:
            from facebone.metrics.plots import plot_cmc

            plot_cmc([(f"{o.target} mixed probes", curve)], out / f"{name}_cmc.png", title=f"CMC on {o.target} 1:N")
        galleries = {tag: {"templates": int(len(t)), "tpir": r.tpir.tolist(), "thresholds": r.thresholds.tolist(),
                           "mated_probes": int(len(r.ranks))} for tag, (t, _), r in zip(g, (g1, g2), per_gallery)}
        save_summary(out, "ijb_identification", metrics, {}, cmc=f"{name}_cmc.npy", galleries=galleries,
                     probes=int(len(probes[0])), fpirs=list(o.fpirs))
        return metrics
