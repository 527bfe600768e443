"""`facebone run EXP.toml`: train, then evaluate (one process, `--nproc N`, or under torchrun)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from facebone.errors import ConfigError, DataError, FaceboneError


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="TABLE.KEY=VALUE",
                        help="override a key (value parsed as TOML; repeatable), e.g. --set train.lr=0.05")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train an experiment, then evaluate it",
                       description="Train the experiment, then run its [[eval]] evaluators. Writes a new run "
                                   "directory under [experiment] output_dir. Several processes: --nproc N on one "
                                   "machine, or `torchrun [--nnodes ...] -m facebone run EXP.toml`.")
    p.add_argument("experiment", nargs="?", help="experiment TOML file (with --resume: optional, must match the run)")
    add_set_argument(p)
    p.add_argument("--overwrite", action="store_true", help="reuse the run directory of the same name, deleting it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train in N processes on this machine (torch's elastic launcher; gloo on CPU, nccl on GPU)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an unfinished run from its latest checkpoint")
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


def preflight(exp: Any) -> None:
    from facebone.train.stages import preflight as check_stage

    check_stage(exp)


def load(args: argparse.Namespace, plugins: Any) -> tuple[Any, Any, Path | None]:
    """(experiment, run to resume or None, checkpoint to resume from or None)."""
    from facebone.experiment.config import load_experiment
    from facebone.train.resume import resume_experiment

    if args.resume:
        return resume_experiment(args.resume, args.experiment, args.overrides, plugins)
    if args.experiment is None:
        raise ConfigError("facebone run: give an experiment file (or --resume RUN_DIR)")
    return load_experiment(args.experiment, args.overrides, plugins=plugins), None, None


def launcher_command(argv: list[str]) -> list[str]:
    """``argv`` (from ``run``) without ``--nproc N``: what each launched process runs."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def run(args: argparse.Namespace) -> int:
    from facebone.plugin.discovery import get_plugins

    plugins = get_plugins()
    if args.nproc is not None and args.nproc != 1:
        from facebone.train.launch import check_nproc, launch_local

        exp, resumed, _ = load(args, plugins)  # refuse a bad experiment before starting any process
        check_nproc(args.nproc, exp.train.device)
        if resumed is None:
            preflight(exp)
        argv = sys.argv[1:]
        start = argv.index("run") if "run" in argv else 0
        return launch_local(args.nproc, launcher_command(argv[start:]))
    try:
        exp, resumed, checkpoint = load(args, plugins)
    except FaceboneError as exc:
        if int(os.environ.get("RANK", "0")) != 0:  # every rank fails alike; rank 0 says so
            exc.quiet = True  # type: ignore[attr-defined]
        raise
    from facebone.train import dist

    ranks = dist.setup(exp.train.device)
    try:
        return train(args, exp, plugins, ranks, resumed, checkpoint)
    finally:
        dist.teardown()


def train(args: argparse.Namespace, exp: Any, plugins: Any, ranks: Any, resumed: Any, checkpoint: Path | None) -> int:
    from facebone.eval.runner import format_metrics_table
    from facebone.rundir import RunDir
    from facebone.train import dist
    from facebone.train.loop import Trainer

    dist.on_main(ranks, lambda: prepare_data(exp))
    devices = dist.describe_devices(ranks)

    made: dict[str, RunDir] = {}

    def open_run_dir() -> str:  # rank 0 only; the others learn the path
        if resumed is not None:
            resumed.acquire()
            resumed.set_status("running", pid=os.getpid(), resumed_from=checkpoint.name if checkpoint else None,
                               world_size=ranks.world_size)
            log(f"resuming {resumed} from {checkpoint}")
            made["run"] = resumed
        else:
            preflight(exp)  # init_from keys, classifier_from, freeze patterns: fail before the run directory exists
            made["run"] = RunDir.create(exp.experiment.output_dir, exp.name, overwrite=args.overwrite)
            made["run"].write_run_files(exp, args.overrides, plugins, world_size=ranks.world_size,
                                        backend=ranks.backend, devices=devices)
            log(f"run directory: {made['run']}")
        return str(made["run"].path)

    path = dist.on_main(ranks, open_run_dir)
    run_dir = made.get("run") or RunDir(path)
    try:
        metrics = Trainer(exp, run_dir, log=log, progress=not args.no_progress, ranks=ranks,
                          resume_from=checkpoint).fit()
    except BaseException as exc:
        if ranks.is_main:
            try:
                run_dir.set_status("failed", error=f"{type(exc).__name__}: {exc}")
            except FaceboneError:  # e.g. the disk is full: the original error says more
                pass
        raise
    if ranks.is_main:
        run_dir.set_status("finished")
        print(format_metrics_table(metrics))
        print(f"results: {run_dir.results}")
    return 0
