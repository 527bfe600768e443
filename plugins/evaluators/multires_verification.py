"""Implementation of ``verification_multires`` (imported lazily by its hook module).

Per set (research/btnet.md §3.1): the first image of every pair is degraded as side 1
(``reso1``, ``upsample1``), the second as side 2; each side is embedded with flip test by its
path (``model1`` / ``model2``), the image embedding being the sum of the original's and the
mirror's; then InsightFace's 10-fold accuracy on the squared distance of the normalised pair.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facebone.contracts import Embedder, EvalContext
from facebone.plugins.evaluators.bin_sets import embed_views, load_pairs, resolve_target
from facebone.plugins.evaluators.resolution import Side, degrade


class MultiresVerification:
    """Callable evaluator: ``evaluate(embedder, context) -> {"<set>/<r1>&<r2>/accuracy": ...}``."""

    def __init__(self, options: Any, *, data_root: Path | None = None):
        self.options = options
        root = options.root or (str(data_root) if data_root is not None else "")
        self.root = Path(root).expanduser() if root else None
        self.targets = [resolve_target(t, self.root) for t in options.targets]
        self.sides = (Side(options.reso1, options.upsample1, options.model1),
                      Side(options.reso2, options.upsample2, options.model2))

    def setting(self, image_size: int) -> str:
        """``"112&14"``, ``"14up&14up"``, ...: the label of this evaluator's setting."""
        return "&".join(side.label(image_size) for side in self.sides)

    def side_views(self, embedder: Embedder, images: np.ndarray, side: Side, desc: str) -> np.ndarray:
        """Raw embeddings ``(V, n, D)`` of one side's images."""
        o = self.options
        faces = degrade(images, side, embedder.image_size, filter=o.filter, antialias=o.antialias)
        branch = side.branch(embedder.image_size)

        class _Path:  # the embedder with this side's path, as embed_views expects
            def views(self, batch: np.ndarray) -> np.ndarray:
                return embedder.views(batch) if branch is None else embedder.views(batch, branch=branch)

        return embed_views(_Path(), faces, o.batch_size, desc)  # type: ignore[arg-type]

    def __call__(self, embedder: Embedder, context: EvalContext) -> dict[str, float]:
        from facebone.metrics.artifacts import save_npy, save_summary
        from facebone.metrics.roc import format_rate, roc_summary
        from facebone.metrics.verification import evaluate_verification

        o = self.options
        out = Path(context.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        setting = self.setting(embedder.image_size)
        far_key = f"val@far{format_rate(o.far)}"
        metrics: dict[str, float] = {}
        sets: dict[str, Any] = {}
        for name, path in self.targets:
            images, issame = load_pairs(path)
            v1 = self.side_views(embedder, images[0::2], self.sides[0], f"embed {name} side 1 ({setting})")
            v2 = self.side_views(embedder, images[1::2], self.sides[1], f"embed {name} side 2 ({setting})")
            views = np.empty((v1.shape[0], 2 * v1.shape[1], v1.shape[2]), dtype=np.float64)
            views[:, 0::2], views[:, 1::2] = v1, v2
            result = evaluate_verification(views.sum(0), issame, n_folds=o.n_folds, far_target=o.far, views=views)
            key = f"{name}/{setting}"
            metrics[f"{key}/accuracy"] = result.accuracy
            metrics[f"{key}/accuracy_std"] = result.accuracy_std
            metrics[f"{key}/{far_key}"] = result.val
            metrics[f"{key}/xnorm1"] = float(np.linalg.norm(v1, axis=-1).mean())
            metrics[f"{key}/xnorm2"] = float(np.linalg.norm(v2, axis=-1).mean())
            similarity = 1.0 - result.distances / 2.0
            tag = f"{name}_{setting.replace('&', '_')}"
            save_npy(out / f"{tag}_scores.npy", similarity)
            save_npy(out / f"{tag}_labels.npy", issame)
            sets[key] = {"path": str(path), "pairs": int(len(issame)), "scores": f"{tag}_scores.npy",
                         "labels": f"{tag}_labels.npy", "score": "cosine similarity (1 - squared L2 / 2)",
                         "setting": setting, "accuracy": result.accuracy, "accuracy_std": result.accuracy_std,
                         "fold_accuracies": result.fold_accuracies.tolist(), "val": result.val,
                         "roc": roc_summary(issame, similarity)}
        save_summary(out, "verification_multires", metrics, sets,
                     sides=[{"reso": s.reso, "upsample": s.upsample, "model": s.model} for s in self.sides],
                     filter=o.filter, antialias=o.antialias)
        return metrics
