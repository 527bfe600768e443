"""``facebone run --resume RUN_DIR [EXP.toml]``: which run, which experiment, which checkpoint.

A run can be resumed if facebone made it, it did not finish, no process is using it and it wrote
at least one checkpoint. An experiment given with ``--resume`` (or ``--set`` overrides) must be
the run's own: any key that would change training is refused, naming every differing key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from facebone.errors import ConfigError
from facebone.rundir import RunDir

MAY_DIFFER = ("experiment.name", "experiment.output_dir", "experiment.description", "data.num_workers",
              "train.num_threads", "train.log_every", "train.device", "embed.")
"""Keys that do not change what is trained, so a resume may change them (prefixes end with '.')."""


def flatten(table: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}`` (list items by index: ``eval.0.type``)."""
    if isinstance(table, dict):
        items = table.items()
    elif isinstance(table, list) and table and all(isinstance(v, dict) for v in table):
        items = ((str(i), v) for i, v in enumerate(table))
    else:
        return {prefix[:-1]: table}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def differing_keys(saved: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """The keys (``table.key``) whose values differ between two resolved experiments, except those
    a resume may change."""
    a, b = flatten(saved), flatten(given)
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    return [k for k in keys if not any(k == m or (m.endswith(".") and k.startswith(m)) for m in MAY_DIFFER)]


def check_resumable(run_dir: str | Path) -> RunDir:
    """The run at ``run_dir``, or one ConfigError saying why it cannot be resumed."""
    path = Path(run_dir)
    run = RunDir(path)
    if not path.is_dir():
        raise ConfigError(f"--resume {path}: no such directory")
    if not run.is_run():
        raise ConfigError(f"--resume {path}: not a facebone run directory (no {RunDir.STATUS})")
    if not run.resolved.is_file():
        raise ConfigError(f"--resume {path}: the run has no {RunDir.RESOLVED}; it cannot be resumed")
    if run.status().get("status") == "finished":
        raise ConfigError(f"--resume {path}: the run finished; nothing to resume (`facebone eval {path}` "
                          "evaluates it again, `facebone run` starts a new run)")
    if run.is_active():
        raise ConfigError(f"--resume {path}: in use by a running facebone process")
    if run.latest_checkpoint() is None:
        raise ConfigError(f"--resume {path}: the run wrote no checkpoint before it stopped; start it again "
                          "(set [train] checkpoint_every to make future runs resumable)")
    return run


def resume_experiment(run_dir: str | Path, experiment: str | None, overrides: Sequence[str],
                      plugins: Any = None) -> tuple[Any, RunDir, Path]:
    """(experiment, run, checkpoint) of a resume; ConfigError naming the keys if ``experiment``
    (or ``overrides``) differ from the run's own configuration."""
    from facebone.commands.eval_cmd import open_run
    from facebone.experiment.config import load_experiment

    run = check_resumable(run_dir)
    saved = open_run(run.path, (), plugins)
    exp = saved
    if experiment is not None or overrides:
        exp = (load_experiment(experiment, overrides, plugins=plugins) if experiment is not None
               else open_run(run.path, overrides, plugins))
        keys = differing_keys(saved.resolved(), exp.resolved())
        if keys:
            raise ConfigError(f"--resume {run.path}: the experiment differs from the run's {RunDir.RESOLVED} in "
                              f"{', '.join(keys)}; resume with the run's own experiment (or start a new run)")
    checkpoint = run.latest_checkpoint()
    assert checkpoint is not None
    return exp, run, checkpoint
