"""Implementation of the ``verification`` evaluator (imported lazily by its hook module)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facebone.contracts import Embedder, EvalContext
from facebone.errors import ConfigError, DataError


def resolve_target(target: str, root: Path | None) -> tuple[str, Path]:
    """``"lfw"`` -> ``("lfw", <root>/lfw.bin)``; a path to a ``.bin`` -> (its stem, the path)."""
    looks_like_path = target.endswith(".bin") or "/" in target or "\\" in target
    if looks_like_path:
        path = Path(target).expanduser()
        if not path.is_absolute() and root is not None and not path.exists():
            path = root / path
        return path.stem, path
    if root is None:
        raise ConfigError(f"[[eval]] verification: target '{target}' is a name but no root is known; "
                          "set root = \"DIR\" or give a path to the .bin file")
    return target, root / f"{target}.bin"


def embed_views(embedder: Embedder, images: np.ndarray, batch_size: int, desc: str) -> np.ndarray:
    """Raw embeddings ``(V, N, D)`` float64 of ``images``, ``batch_size`` images per embedder call."""
    from facebone.progress import Progress

    chunks = []
    with Progress(len(images), desc, unit="img") as progress:
        for start in range(0, len(images), batch_size):
            part = images[start:start + batch_size]
            views = np.asarray(embedder.views(part))
            if views.ndim != 3 or views.shape[1] != len(part):
                raise ValueError(f"embedder.views returned shape {views.shape} for {len(part)} images; "
                                 "expected (V, N, D)")
            chunks.append(views.astype(np.float64))
            progress.update(len(part))
    return np.concatenate(chunks, axis=1)


def load_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(2P, H, W, 3)`` uint8 and labels ``(P,)`` of one ``.bin`` set."""
    if not path.is_file():
        raise DataError(f"{path}: verification set not found")
    from facebone.data.verification_bin import load_bin

    images, issame = load_bin(path)
    issame = np.asarray(issame, dtype=bool).reshape(-1)
    if len(images) != 2 * len(issame):
        raise DataError(f"{path}: {len(images)} images for {len(issame)} pairs (expected {2 * len(issame)})")
    return np.asarray(images), issame


class BinVerification:
    """Callable evaluator: ``evaluate(embedder, context) -> dict[str, float]``."""

    def __init__(self, options: Any, *, data_root: Path | None = None):
        self.options = options
        root = options.root or (str(data_root) if data_root is not None else "")
        self.root = Path(root).expanduser() if root else None
        self.targets = [resolve_target(t, self.root) for t in options.targets]

    def __call__(self, embedder: Embedder, context: EvalContext) -> dict[str, float]:
        from facebone.metrics.artifacts import save_npy, save_summary
        from facebone.metrics.roc import format_rate, roc_curve, roc_summary
        from facebone.metrics.verification import evaluate_verification

        opts = self.options
        out = Path(context.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        far_key = f"val@far{format_rate(opts.far)}"
        metrics: dict[str, float] = {}
        sets: dict[str, Any] = {}
        for name, path in self.targets:
            images, issame = load_pairs(path)
            if len(issame) < opts.n_folds:
                raise DataError(f"{path}: {len(issame)} pairs, fewer than the {opts.n_folds} cross-validation folds; "
                                "lower [[eval]] n_folds or use a larger set")
            views = embed_views(embedder, images, opts.batch_size, f"embed {name}")
            result = evaluate_verification(views.sum(0), issame, n_folds=opts.n_folds, far_target=opts.far,
                                           views=views)
            metrics[f"{name}/accuracy"] = result.accuracy
            metrics[f"{name}/accuracy_std"] = result.accuracy_std
            metrics[f"{name}/{far_key}"] = result.val
            metrics[f"{name}/xnorm"] = result.xnorm
            similarity = 1.0 - result.distances / 2.0  # cosine similarity of the normalised embeddings
            save_npy(out / f"{name}_scores.npy", similarity)
            save_npy(out / f"{name}_labels.npy", issame)
            roc = roc_summary(issame, similarity)
            sets[name] = {
                "path": str(path), "pairs": int(len(issame)), "scores": f"{name}_scores.npy",
                "labels": f"{name}_labels.npy", "score": "cosine similarity (1 - squared L2 / 2)",
                "accuracy": result.accuracy, "accuracy_std": result.accuracy_std,
                "fold_accuracies": result.fold_accuracies.tolist(),
                "best_thresholds": result.best_thresholds.tolist(), "val": result.val, "val_std": result.val_std,
                "far": result.far, "far_target": opts.far, "xnorm": result.xnorm, "roc": roc,
            }
            if opts.plots:
                from facebone.metrics.plots import plot_roc

                fpr, tpr, _ = roc_curve(issame, similarity)
                plot_roc([(name, fpr, tpr)], out / f"{name}_roc.png", title=f"ROC on {name} ({len(issame)} pairs)")
        metrics["verification/mean_accuracy"] = float(np.mean([metrics[f"{n}/accuracy"] for n, _ in self.targets]))
        save_summary(out, "verification", metrics, sets)
        return metrics
