"""Implementation of the ``survface`` evaluator (imported lazily by its hook module).

QMUL-SurvFace's published layout (``ROOT`` = the directory given as ``root``)::

    ROOT/Face_Identification_Test_Set/gallery_img_ID_pairs.mat       gallery_set, gallery_ids
    ROOT/Face_Identification_Test_Set/mated_probe_img_ID_pairs.mat   mated_probe_set, mated_probe_ids
    ROOT/Face_Identification_Test_Set/gallery/<file>                 the watch-list images
    ROOT/Face_Identification_Test_Set/mated_probe/<file>
    ROOT/Face_Identification_Test_Set/unmated_probe/<file>           every file here is a distractor

Each face is embedded once (no flip test unless the option ``flip``) at its native size: a
routing backbone (btnet) picks its path per face, others get it resized. Gallery prototypes
are the mean of each identity's raw embeddings, then normalised. Identities are matched by
their raw ids (the original re-indexes gallery and probes separately by first appearance,
which is correct only if both files list identities in the same order).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from facebone.contracts import Embedder, EvalContext
from facebone.errors import DataError

TEST_SET = "Face_Identification_Test_Set"
LISTS = {"gallery": ("gallery_img_ID_pairs.mat", "gallery_set", "gallery_ids"),
         "mated_probe": ("mated_probe_img_ID_pairs.mat", "mated_probe_set", "mated_probe_ids")}


def read_list(root: Path, part: str) -> tuple[list[str], np.ndarray]:
    """(file names, raw ids) of the gallery or the mated probes, from their .mat file."""
    from scipy.io import loadmat

    name, files_key, ids_key = LISTS[part]
    path = root / TEST_SET / name
    if not path.is_file():
        raise DataError(f"{path}: SurvFace list not found")
    try:
        meta = loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for bad files
        raise DataError(f"{path}: not a readable MATLAB file ({exc})") from None
    for key in (files_key, ids_key):
        if key not in meta:
            raise DataError(f"{path}: no variable '{key}'")
    files = [str(np.asarray(f).reshape(-1)[0]) for f in np.asarray(meta[files_key]).reshape(-1)]
    ids = np.asarray(meta[ids_key]).reshape(-1).astype(np.int64)
    if len(files) != len(ids):
        raise DataError(f"{path}: {len(files)} images but {len(ids)} ids")
    if not files:
        raise DataError(f"{path}: no images listed")
    return files, ids


def unmated_files(root: Path) -> list[str]:
    folder = root / TEST_SET / "unmated_probe"
    if not folder.is_dir():
        raise DataError(f"{folder}: SurvFace unmated probe folder not found")
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    if not files:
        raise DataError(f"{folder}: no images")
    return files


def _load(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: image listed in the SurvFace lists not found") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc})") from None


def embed_folder(embedder: Embedder, folder: Path, files: list[str], *, batch_size: int, workers: int, flip: bool,
                 desc: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw embeddings ``(N, D)`` of the images (each at its native size) and their ``(h, w)``."""
    from facebone.progress import Progress

    chunks, sizes = [], []
    with ThreadPoolExecutor(max_workers=workers) as pool, Progress(len(files), desc, unit="img") as progress:
        for lo in range(0, len(files), batch_size):
            images = list(pool.map(_load, [folder / f for f in files[lo:lo + batch_size]]))
            views = np.asarray(embedder.views(images), dtype=np.float32)
            if flip and len(views) == 1:  # an embedder without flip test: embed the mirrors too
                views = np.concatenate([views, np.asarray(embedder.views([img[:, ::-1] for img in images]),
                                                          dtype=np.float32)])
            chunks.append(views.sum(0) if flip else views[0])
            sizes.extend(img.shape[:2] for img in images)
            progress.update(len(images))
    return np.concatenate(chunks), np.asarray(sizes, dtype=np.int64)


def prototypes(feats: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique ids, mean raw embedding of each), vectorised."""
    uniq, inverse = np.unique(ids, return_inverse=True)
    sums = np.zeros((len(uniq), feats.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, feats)
    return uniq, sums / np.bincount(inverse)[:, None]


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class SurvFaceIdentification:
    """Callable evaluator: ``evaluate(embedder, context) -> {"survface/auc": .., "survface/tpir20@fpir=0.3": ..}``."""

    def __init__(self, options: Any):
        self.options = options
        self.root = Path(options.root).expanduser()

    def __call__(self, embedder: Embedder, context: EvalContext) -> dict[str, float]:
        from facebone.metrics.artifacts import save_npy, save_summary
        from facebone.metrics.open_set import open_set_identification

        o = self.options
        flip = bool(o.flip)
        base = self.root / TEST_SET
        g_files, g_ids = read_list(self.root, "gallery")
        k_files, k_ids = read_list(self.root, "mated_probe")
        u_files = unmated_files(self.root)
        kw = dict(batch_size=o.batch_size, workers=o.workers, flip=flip)
        g_feat, g_sizes = embed_folder(embedder, base / "gallery", g_files, desc="embed SurvFace gallery", **kw)
        k_feat, k_sizes = embed_folder(embedder, base / "mated_probe", k_files, desc="embed SurvFace mated", **kw)
        u_feat, u_sizes = embed_folder(embedder, base / "unmated_probe", u_files, desc="embed SurvFace unmated", **kw)
        ids, protos = prototypes(g_feat, g_ids)
        result = open_set_identification(_normalise(k_feat), k_ids, _normalise(protos), ids, _normalise(u_feat),
                                         rank=o.rank, n_thresholds=o.thresholds, fpirs=o.fpirs)
        metrics = {"survface/auc": result.auc, "survface/rank1": result.rank1}
        for f, t in result.at_fpir.items():
            metrics[f"survface/tpir{o.rank}@fpir={f:g}"] = t
        out = Path(context.out_dir)
        save_npy(out / "survface_thresholds.npy", result.thresholds)
        save_npy(out / "survface_tpir.npy", result.tpir)
        save_npy(out / "survface_fpir.npy", result.fpir)
        sizes = np.concatenate([g_sizes, k_sizes, u_sizes])
        save_summary(out, "survface", metrics, {}, rank=o.rank, thresholds=o.thresholds, flip=flip,
                     gallery_images=len(g_files), gallery_identities=int(len(ids)), mated_probes=len(k_files),
                     unmated_probes=len(u_files), curve={"thresholds": "survface_thresholds.npy",
                                                         "tpir": "survface_tpir.npy", "fpir": "survface_fpir.npy"},
                     native_size_median=[int(v) for v in np.median(sizes, axis=0)])
        return metrics
