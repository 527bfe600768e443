"""`facebone eval EXP.toml|RUN_DIR [--checkpoint PATH]`: evaluate only."""
from __future__ import annotations

import argparse
import sys
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
    from facebone.checkpoint import load_module_state, read_checkpoint

    tensors, _ = read_checkpoint(path)
    if any(k.startswith("model.") for k in tensors):
        load_module_state(model, tensors, "model", str(path))
    else:
        load_module_state(model.backbone, {f"backbone.{k}": v for k, v in tensors.items()}, "backbone", str(path))


def open_run(run_dir: Path, overrides: list[str] | tuple[str, ...] = (), plugins=None):  # type: ignore[no-untyped-def]
    """The validated experiment of a run directory (its resolved ``config.toml``)."""
    from facebone.config import load_experiment
    from facebone.rundir import RESOLVED

    config = run_dir / RESOLVED
    if not config.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no {RESOLVED})")
    return load_experiment(config, overrides, plugins=plugins, check_paths=False)


def model_from_checkpoint(exp, checkpoint: Path):  # type: ignore[no-untyped-def]
    """Warp + backbone of ``exp`` with the weights of ``checkpoint``, in eval mode."""
    from facebone.model import build_model

    if not checkpoint.is_file():
        raise DataError(f"{checkpoint}: checkpoint not found")
    model = build_model(exp)
    load_weights(model, checkpoint)
    return model.eval()


def evaluate(args: argparse.Namespace) -> int:
    from facebone.config import load_experiment
    from facebone.discovery import get_plugins
    from facebone.evaluate import format_metrics_table, run_evaluators
    from facebone.rundir import CHECKPOINTS, LAST_CHECKPOINT, new_run_dir, write_run_files
    from facebone.train import resolve_device

    plugins = get_plugins()
    target = Path(args.target)
    if target.is_dir():
        exp = open_run(target, args.overrides, plugins)
        checkpoint = Path(args.checkpoint) if args.checkpoint else target / CHECKPOINTS / LAST_CHECKPOINT
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
        run_dir = target
    else:  # a new run directory, made only once the checkpoint has loaded
        run_dir = new_run_dir(exp.experiment.output_dir, f"{exp.name}-eval")
        write_run_files(run_dir, exp, args.overrides, plugins)
    log(f"evaluating {checkpoint}")
    metrics = run_evaluators(exp, model, run_dir, device, step=-1, checkpoint=str(checkpoint), log=log)
    print(format_metrics_table(metrics))
    print(f"results: {run_dir / 'results.json'}", file=sys.stdout)
    return 0
