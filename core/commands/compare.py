"""`facebone compare RUN_DIR...`: one table and one ROC plot from several runs' saved scores.

Reads ``RUN_DIR/eval/<evaluator>/summary.json`` and the score arrays it names (written by the
evaluators; see :mod:`facebone.metrics.artifacts`); no embedding is recomputed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from facebone.errors import DataError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("compare", help="compare runs from their saved evaluation scores",
                              description="Print TPR at each FPR, AUC, EER and verification accuracy of every "
                                          "saved score set of each run, and plot all ROC curves in one PNG.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (holding eval/<evaluator>/)")
    p.add_argument("--out", default="compare_roc.png", help="PNG of all ROC curves (default: %(default)s)")
    p.add_argument("--fpr", type=float, nargs="+", default=None, metavar="FPR",
                   help="FPR columns (default: 1e-6 .. 1e-1)")
    p.add_argument("--force", action="store_true",
                   help="overwrite --out even if it is not a plot facebone wrote")
    p.set_defaults(func=run_compare)


def eval_dirs(run: Path, warn: Any = None) -> list[Path]:
    """Evaluator output directories of a run (``run/eval/*`` with a summary.json), or ``run`` itself.

    ``warn(message)`` hears of evaluator folders without a ``summary.json``.
    """
    if not run.is_dir():
        raise DataError(f"{run}: run directory not found")
    if (run / "summary.json").is_file():
        return [run]
    found = []
    for d in sorted((run / "eval").glob("*")):
        if (d / "summary.json").is_file():
            found.append(d)
        elif d.is_dir() and warn is not None:
            warn(f"{d}: no summary.json, skipped (compare reads the layout described in facebone.contracts)")
    if not found:
        raise DataError(f"{run}: no saved evaluation (expected {run / 'eval'}/<evaluator>/summary.json)")
    return found


def _warn(message: str) -> None:
    print(f"facebone: warning: {message}", file=sys.stderr)


def collect(runs: list[Path], fprs: tuple[float, ...], warn: Any = _warn) -> tuple[
        list[dict[str, Any]], list[tuple[str, Any, Any]], list[tuple[str, dict[str, float]]]]:
    """Rows of the table, ROC curves, and other metrics (identification) of every run.

    What cannot be read (a broken summary.json, a set entry without score files, unreadable
    or mismatched arrays) is skipped with ``warn(message)`` naming the file.
    """
    from facebone.metrics import roc
    from facebone.metrics.artifacts import load_scores, load_summary

    names = [r.resolve().name or str(r) for r in runs]
    if len(set(names)) < len(names):
        names = [str(r) for r in runs]
    rows, curves, others = [], [], []
    for run, run_name in zip(runs, names):
        for d in eval_dirs(run, warn):
            try:
                summary = load_summary(d)
            except DataError as exc:
                warn(f"{exc}; skipped")
                continue
            sets = summary.get("sets", {})
            for set_name, entry in sets.items():
                if not isinstance(entry, dict) or "scores" not in entry or "labels" not in entry:
                    warn(f"{d / 'summary.json'}: set '{set_name}' names no 'scores' and 'labels' files; skipped")
                    continue
                try:
                    labels, scores = load_scores(d, entry)
                except DataError as exc:
                    warn(f"{exc}; set '{set_name}' skipped")
                    continue
                fpr, tpr, _ = roc.roc_curve(labels, scores)
                row = {"run": run_name, "set": set_name,
                       **{roc.format_rate(f): float(t) for f, t in zip(fprs, roc.tpr_at_fpr(fpr, tpr, fprs))},
                       "AUC": roc.auc(fpr, tpr), "EER": roc.eer(fpr, tpr)}
                if "accuracy" in entry:
                    row["Acc"] = float(entry["accuracy"])
                    row["Acc std"] = float(entry.get("accuracy_std", float("nan")))
                rows.append(row)
                curves.append((f"{run_name} {set_name}", fpr, tpr))
            metrics = summary.get("metrics")
            if not sets and isinstance(metrics, dict) and metrics:
                numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                if len(numbers) < len(metrics):
                    warn(f"{d / 'summary.json'}: {len(metrics) - len(numbers)} metric(s) that are not numbers "
                         "(null: NaN or Inf when evaluated); skipped")
                others.append((f"{run_name} {summary.get('evaluator', d.name)}", numbers))
            elif not sets:
                warn(f"{d / 'summary.json'}: neither score sets nor metrics; skipped")
    return rows, curves, others


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table; rates as percentages."""
    columns: list[str] = []
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    cells = [[("" if k not in r else r[k] if isinstance(r[k], str) else f"{100 * r[k]:.2f}") for k in columns]
             for r in rows]
    header = [c if c in ("run", "set", "AUC", "EER", "Acc", "Acc std") else f"TPR@{c}" for c in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
              for row in cells]
    return "\n".join(lines)


def run_compare(args: argparse.Namespace) -> int:
    from facebone.metrics.roc import DEFAULT_FPRS

    from facebone.io import check_output_file
    from facebone.metrics.plots import is_facebone_png

    fprs = tuple(args.fpr) if args.fpr else DEFAULT_FPRS
    runs = [Path(r) for r in args.runs]
    out = Path(args.out)
    check_output_file(out, force=args.force or is_facebone_png(out), what="--out")
    rows, curves, others = collect(runs, fprs)
    if rows:
        print("TPR at FPR, AUC, EER and accuracy in %")
        print(format_table(rows))
        from facebone.metrics.plots import plot_roc

        path = plot_roc(curves, args.out, title="ROC comparison", xlim=(max(min(fprs), 1e-6), 1.0))
        print(f"\nROC curves: {path}")
    for label, metrics in others:
        print(f"\n{label}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    if not rows and not others:
        raise DataError("no score sets found in " + ", ".join(str(r) for r in runs))
    return 0
