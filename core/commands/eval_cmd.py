"""`facebone eval EXP.toml|RUN_DIR [--checkpoint PATH]`: evaluate only."""
from __future__ import annotations

import argparse
import sys
from typing import Any
from pathlib import Path

from facebone.commands.run import add_set_argument, log
from facebone.errors import ConfigError, DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run or a checkpoint",
                       description="Run the [[eval]] evaluators on a run directory's last checkpoint (results "
                                   "merged into its results.json), or on --checkpoint with an experiment file "
                                   "(results in a new run directory).")
    p.add_argument("target", help="run directory, or experiment TOML file (then --checkpoint is required)")
    p.add_argument("--checkpoint", help="safetensors checkpoint (facebone's, or a bare backbone state dict)")
    add_set_argument(p)
    p.set_defaults(func=evaluate)


def load_weights(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Load a facebone checkpoint (``model.*`` keys) or a bare backbone state dict into ``model``."""
    from facebone.weights.checkpoint import load_module_state, read_checkpoint

    tensors, _ = read_checkpoint(path)
    if any(k.startswith("model.") for k in tensors):
        load_module_state(model, tensors, "model", str(path))
    else:
        load_module_state(model.backbone, {f"backbone.{k}": v for k, v in tensors.items()}, "backbone", str(path))


def open_run(run_dir: Path, overrides: list[str] | tuple[str, ...] = (), plugins=None):  # type: ignore[no-untyped-def]
    """The validated experiment of a run directory (its resolved ``config.toml``)."""
    from facebone.experiment.config import load_experiment
    from facebone.rundir import RunDir

    config = RunDir(run_dir).resolved
    if not config.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no {config.name})")
    return load_experiment(config, overrides, plugins=plugins, check_paths=False)


def latest_checkpoint(run_dir: Path, log: Any = None) -> Path:
    """The run's last checkpoint, or for an unfinished run its newest step checkpoint (said in ``log``)."""
    from facebone.rundir import RunDir

    run = RunDir(run_dir)
    found = run.latest_checkpoint()
    if found is None:
        raise DataError(f"{run.checkpoints}: no checkpoint (the run wrote none)")
    if found != run.last_checkpoint:
        status = run.status().get("status", "unfinished")
        (log or (lambda m: print(m, file=sys.stderr)))(
            f"{run_dir}: run is {status}, no {run.LAST}; using its latest checkpoint {found.name}")
    return found


def model_from_checkpoint(exp, checkpoint: Path):  # type: ignore[no-untyped-def]
    """Warp + backbone of ``exp`` with the weights of ``checkpoint``, in eval mode."""
    from facebone.model.build import build_model

    if not checkpoint.is_file():
        raise DataError(f"{checkpoint}: checkpoint not found")
    model = build_model(exp)
    load_weights(model, checkpoint)
    return model.eval()


def evaluate(args: argparse.Namespace) -> int:
    from facebone.experiment.config import load_experiment
    from facebone.plugin.discovery import get_plugins
    from facebone.eval.runner import format_metrics_table, run_evaluators
    from facebone.rundir import RunDir
    from facebone.train.runtime import resolve_device

    plugins = get_plugins()
    target = Path(args.target)
    if target.is_dir():
        exp = open_run(target, args.overrides, plugins)
        checkpoint = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(target, log)
    else:
        exp = load_experiment(target, args.overrides, plugins=plugins, check_paths=False)
        if not args.checkpoint:
            raise ConfigError(f"{target}: evaluating an experiment file needs --checkpoint PATH")
        checkpoint = Path(args.checkpoint)
    if not exp.evals:
        raise ConfigError(f"{exp.source}: no [[eval]] table: nothing to evaluate")
    device = resolve_device(exp.train.device)
    model = model_from_checkpoint(exp, checkpoint).to(device)
    if target.is_dir():
        run_dir = RunDir(target)
    else:  # a new run directory, made only once the checkpoint has loaded
        run_dir = RunDir.create(exp.experiment.output_dir, f"{exp.name}-eval")
        run_dir.write_run_files(exp, args.overrides, plugins)
    log(f"evaluating {checkpoint}")
    try:
        rerun = None if target.is_dir() else f"facebone eval {target} --checkpoint {checkpoint}"
        metrics = run_evaluators(exp, model, run_dir, device, step=-1, checkpoint=str(checkpoint), log=log,
                                 rerun=rerun)
    except BaseException as exc:
        if not target.is_dir():
            run_dir.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    if not target.is_dir():
        run_dir.set_status("finished")
    print(format_metrics_table(metrics))
    print(f"results: {run_dir.results}", file=sys.stdout)
    return 0
