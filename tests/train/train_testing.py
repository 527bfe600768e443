"""Helpers for the training-engine tests: experiments as dicts, runs in-process or through the CLI."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from facebone.experiment import tomlio
from facebone.experiment.config import validate
from facebone.weights.checkpoint import read_checkpoint


def experiment_dict(data: Path, out: Path, *, name: str = "t", backbone: dict | None = None, **train: Any) -> dict:
    raw: dict[str, Any] = {
        "experiment": {"name": name, "seed": 5, "output_dir": str(out)},
        "data": {"train": str(data), "image_size": 32},
        "backbone": backbone or {"type": "iresnet18", "width": 8, "embedding_size": 16},
        "head": {"type": "cosface", "scale": 16.0},
        "train": {"batch_size": 8, "epochs": 1, "lr": 0.05, "log_every": 1, "num_threads": 1, **train},
    }
    return raw


def with_eval(raw: dict) -> dict:
    raw = copy.deepcopy(raw)
    raw["eval"] = [{"type": "verification", "targets": ["holdout"]}]
    return raw


def write_experiment(path: Path, raw: dict) -> Path:
    path.write_text(tomlio.dumps(raw))
    return path


def train_in_process(raw: dict, run: Path, plugins: Any = None) -> Path:
    """Train ``raw`` into ``run`` in this process; the path of its last checkpoint."""
    from facebone.train.loop import Trainer

    run.mkdir(parents=True)
    Trainer(validate(raw, source="test", plugins=plugins), run, log=lambda m: None, progress=False).fit()
    return run / "checkpoints" / "last.safetensors"


def cli(*args: Any, env: dict | None = None, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "facebone", *map(str, args)], capture_output=True, text=True,
                          env=full, cwd=cwd, timeout=timeout)


def popen(*args: Any, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    full = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "facebone", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full, cwd=cwd)


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)[0]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str = "model.") -> float:
    keys = [k for k in a if k.startswith(prefix)]
    assert keys and set(keys) == {k for k in b if k.startswith(prefix)}
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in keys if a[k].is_floating_point())


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and every process it started, at once (as if the machine died)."""
    import signal

    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
