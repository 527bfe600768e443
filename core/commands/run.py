"""`facebone run EXP.toml`: train, then evaluate."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facebone.errors import DataError, FaceboneError


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="TABLE.KEY=VALUE",
                        help="override a key (value parsed as TOML; repeatable), e.g. --set train.lr=0.05")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train an experiment, then evaluate it",
                       description="Train the experiment, then run its [[eval]] evaluators. Writes a new run "
                                   "directory under [experiment] output_dir.")
    p.add_argument("experiment", help="experiment TOML file")
    add_set_argument(p)
    p.add_argument("--overwrite", action="store_true", help="reuse the run directory of the same name, deleting it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def log(message: str) -> None:
    print(f"[facebone] {message}", file=sys.stderr, flush=True)


def prepare_data(exp) -> None:  # type: ignore[no-untyped-def]
    """Generate the synthetic data set of a ``[data.synth]`` table (reused when it exists)."""
    if exp.synth is None:
        return
    from dataclasses import asdict

    from facebone.data.synth import generate_synthetic

    try:
        info = generate_synthetic(exp.data.train, image_size=exp.data.image_size, **asdict(exp.synth))
    except DataError as exc:
        raise DataError(f"{exp.source} [data.synth]: {exc}; point [data] train elsewhere or remove [data.synth]") \
            from None
    action = "reused" if info.get("reused") else "generated"
    log(f"synthetic data {action} in {exp.data.train}: {exp.synth.identities} identities x "
        f"{exp.synth.images_per_identity} images at {exp.data.image_size}px, {exp.synth.pairs} held-out pairs")
    if not Path(exp.data.train).exists():
        raise DataError(f"{exp.data.train}: synthetic data was not generated")


def run(args: argparse.Namespace) -> int:
    from facebone.experiment.config import load_experiment
    from facebone.plugin.discovery import get_plugins
    from facebone.eval.runner import format_metrics_table
    from facebone.rundir import RunDir
    from facebone.train.loop import Trainer

    plugins = get_plugins()
    exp = load_experiment(args.experiment, args.overrides, plugins=plugins)
    prepare_data(exp)
    run_dir = RunDir.create(exp.experiment.output_dir, exp.name, overwrite=args.overwrite)
    run_dir.write_run_files(exp, args.overrides, plugins)
    log(f"run directory: {run_dir}")
    try:
        metrics = Trainer(exp, run_dir, log=log, progress=not args.no_progress).fit()
    except BaseException as exc:
        try:
            run_dir.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        except FaceboneError:  # e.g. the disk is full: the original error says more
            pass
        raise
    run_dir.set_status("finished")
    print(format_metrics_table(metrics))
    print(f"results: {run_dir.results}")
    return 0
