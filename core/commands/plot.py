"""`facebone plot RUN_DIR... --out DIR`: training curves of several runs overlaid, as PNGs."""
from __future__ import annotations

import argparse
from pathlib import Path

from facebone.errors import ConfigError

MARKER = ".facebone-plots"
LOG_SCALE = ("loss", "lr")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="overlay the training curves of runs (loss, lr, samples/s, metrics) as PNGs",
                       description="Draw every scalar the runs logged (loss and each loss term, learning rate, "
                                   "samples/s, fp16 grad scale, every validation metric) against step, one PNG "
                                   "per curve with one line per run, and print each run's final values.")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--metrics", help="comma-separated curves: a tag ('train/loss'), its last part ('loss') or a "
                                     "wildcard ('eval/*'); default: all")
    p.add_argument("--out", required=True, help="folder for the PNGs (created; must be new, empty, or an earlier "
                                                "plot folder)")
    p.set_defaults(func=plot)


def _label(path: Path, taken: set[str]) -> str:
    """The run's name (its directory name), made unique with its parent when two runs share it."""
    label = path.resolve().name
    if label in taken:
        label = f"{path.resolve().parent.name}/{label}"
    taken.add(label)
    return label


def _out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ConfigError(f"--out {out}: folder is not empty and not a facebone plot folder; choose a new one")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()
    return out


def plot(args: argparse.Namespace) -> int:
    from facebone.metrics.curves import read_scalars, select_tags
    from facebone.metrics.plots import plot_curves
    from facebone.rundir import RunDir

    taken: set[str] = set()
    runs = []
    for arg in args.runs:
        path = Path(arg)
        if not path.is_dir():
            raise ConfigError(f"{path}: not a run directory")
        runs.append((_label(path, taken), read_scalars(RunDir(path).tensorboard)))
    tags = sorted({t for _, scalars in runs for t in scalars})
    patterns = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    chosen = select_tags(tags, patterns)
    out = _out_dir(Path(args.out))
    for tag in chosen:
        series = [(label, *scalars[tag]) for label, scalars in runs if tag in scalars]
        name = tag.replace("/", "_")
        plot_curves(series, out / f"{name}.png", title=tag, ylabel=tag.rsplit("/", 1)[-1],
                    log_y=tag.rsplit("/", 1)[-1] in LOG_SCALE)
    print(final_table(runs, chosen))
    print(f"{len(chosen)} plots in {out}")
    return 0


def final_table(runs: list[tuple[str, dict]], tags: list[str]) -> str:
    """Each run's last value (and its step) of every curve: one row per run."""
    width = max(len(label) for label, _ in runs)
    columns = [max(len(t), 12) for t in tags]
    lines = [f"{'run':<{width}}  " + "  ".join(f"{t:>{w}}" for t, w in zip(tags, columns))]
    for label, scalars in runs:
        cells = []
        for tag, w in zip(tags, columns):
            if tag in scalars and len(scalars[tag][1]):
                cells.append(f"{scalars[tag][1][-1]:>{w}.5g}")
            else:
                cells.append(f"{'-':>{w}}")
        lines.append(f"{label:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)
