"""pair_list: TAR@FAR on a CSV list of image pairs (header ``path1,path2,same``), a facebone evaluator."""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import facebone
from facebone import option

FACEBONE_PLUGIN_API = "1.0"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairListOptions:
    csv: str = option(help="CSV of pairs with header path1,path2,same (paths relative to the CSV file)")
    fars: tuple[float, ...] = option((1e-3, 1e-2, 1e-1), "false accept rates at which to report TAR")

    def __post_init__(self) -> None:
        if not self.fars or any(not 0 < f < 1 for f in self.fars):
            raise ValueError(f"fars must be rates in (0, 1), got {list(self.fars)}")


def read_pairs(path: Path) -> tuple[list[Path], list[Path], list[bool]]:
    """The pairs of ``path``; DataError naming the file and line for anything malformed."""
    from facebone.errors import DataError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read pair list ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip() for c in rows[0]] != ["path1", "path2", "same"]:
        raise DataError(f"{path}: line 1: expected the header 'path1,path2,same'")
    left, right, same = [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 3 or row[2].strip() not in ("0", "1"):
            raise DataError(f"{path}: line {number}: expected path1,path2,same with same = 0 or 1, got {row}")
        left.append(path.parent / row[0].strip())
        right.append(path.parent / row[1].strip())
        same.append(row[2].strip() == "1")
    if not same or all(same) or not any(same):
        raise DataError(f"{path}: needs both genuine (same = 1) and impostor (same = 0) pairs")
    return left, right, same


def build_pair_list(options: PairListOptions, *, data_root: Any = None, **runtime: Any) -> Any:
    def evaluate(embedder: Any, context: Any) -> dict[str, float]:
        import numpy as np

        from facebone.data.decode import decode_image
        from facebone.errors import DataError
        from facebone.metrics import roc
        from facebone.metrics.artifacts import save_npy, save_summary

        left, right, same = read_pairs(Path(options.csv))
        paths = sorted(set(left) | set(right))
        index = {p: i for i, p in enumerate(paths)}
        images = []
        for p in paths:
            try:
                data = p.read_bytes()
            except OSError as exc:
                raise DataError(f"{options.csv}: image {p}: {exc.strerror}") from None
            images.append(decode_image(data, where=str(p)).permute(1, 2, 0).numpy())
        if len({im.shape for im in images}) > 1:
            raise DataError(f"{options.csv}: images differ in size; give aligned crops of one size")
        features = embedder(np.stack(images))
        features /= np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
        a = features[[index[p] for p in left]]
        b = features[[index[p] for p in right]]
        scores, labels = (a * b).sum(axis=1), np.array(same)
        fpr, tpr, _ = roc.roc_curve(labels, scores)
        name = context.name
        metrics = {f"{name}/tar@far={roc.format_rate(f)}": float(t)
                   for f, t in zip(options.fars, roc.tpr_at_fpr(fpr, tpr, options.fars))}
        metrics[f"{name}/auc"], metrics[f"{name}/eer"] = roc.auc(fpr, tpr), roc.eer(fpr, tpr)
        save_npy(context.out_dir / "scores.npy", scores)
        save_npy(context.out_dir / "labels.npy", labels)
        save_summary(context.out_dir, "pair_list", metrics,
                     {"pairs": {"scores": "scores.npy", "labels": "labels.npy", "count": len(same)}})
        return metrics

    return evaluate


@facebone.hookimpl
def facebone_evaluators(registry: Any) -> None:
    registry.add("pair_list", build_pair_list, options=PairListOptions,
                 summary="pair_list: TAR@FAR, AUC and EER on a CSV list of image pairs (example third-party plugin)")
