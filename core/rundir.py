"""Run directories: the experiment as given, the resolved configuration, the environment
record, checkpoints, TensorBoard logs, evaluator artifacts and results.json.

A run never overwrites an earlier run unless asked: a taken name gets a numeric suffix.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from facebone import __version__, tomlio
from facebone.errors import ConfigError
from facebone.io import atomic_write_json, atomic_write_text

GIVEN = "experiment.toml"
RESOLVED = "config.toml"
ENVIRONMENT = "environment.json"
RESULTS = "results.json"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.safetensors"


def new_run_dir(output_dir: str | os.PathLike, name: str, *, overwrite: bool = False) -> Path:
    """Create ``output_dir/name`` (or ``name-2``, ``name-3``... if taken; reuse it if ``overwrite``)."""
    base = Path(output_dir)
    base.mkdir(parents=True, exist_ok=True)
    candidate = base / name
    if overwrite:
        if candidate.exists():
            shutil.rmtree(candidate)
        candidate.mkdir()
        return candidate
    n = 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = base / f"{name}-{n}"


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def environment_record(plugins: Any) -> dict[str, Any]:
    """Python, platform, torch, facebone, every plugin distribution and the git commit."""
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "facebone": __version__,
        "plugins": {f"{p.provider.plugin}": {"distribution": p.provider.dist, "version": p.provider.version,
                                             "components": [f"{k}:{n}" for k, n in p.components]}
                    for p in plugins.loaded},
        "plugin_failures": [{"plugin": f.provider.plugin, "distribution": f.provider.dist,
                             "version": f.provider.version, "error": f.error} for f in plugins.failures],
        "git_commit": _git_commit(),
        "command": sys.argv,
    }


def write_run_files(run_dir: Path, exp: Any, overrides: list[str], plugins: Any) -> None:
    """Write the experiment as given, the resolved configuration and the environment record."""
    source = Path(exp.source)
    given = source.read_text(encoding="utf-8") if source.is_file() else tomlio.dumps(exp.given)
    if overrides:
        given += "\n# overrides given on the command line:\n" + "".join(f"#   --set {o}\n" for o in overrides)
    atomic_write_text(run_dir / GIVEN, given)
    header = "# Resolved configuration: every default filled in. Run again with `facebone run` on this file.\n"
    atomic_write_text(run_dir / RESOLVED, header + tomlio.dumps(exp.resolved()))
    atomic_write_json(run_dir / ENVIRONMENT, environment_record(plugins))


def read_results(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None


def record_results(run_dir: Path, metrics: dict[str, float], *, step: int, checkpoint: str | None) -> dict[str, Any]:
    """Merge ``metrics`` into ``results.json`` (latest values plus a history), atomically."""
    results = read_results(run_dir)
    results.setdefault("metrics", {}).update(metrics)
    results["step"] = step
    if checkpoint is not None:
        results["checkpoint"] = checkpoint
    results.setdefault("history", []).append({"step": step, "metrics": metrics})
    atomic_write_json(Path(run_dir) / RESULTS, results)
    return results
