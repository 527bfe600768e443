"""Run directories: one object owns every path of a run.

A run directory holds the experiment as given, the resolved configuration, the environment
record, checkpoints, TensorBoard logs, evaluator artifacts, ``results.json`` and a status file
(``run.json``) that marks it as facebone's own. A run never overwrites an earlier run unless
asked, and ``--overwrite`` only ever deletes a directory that facebone marked as a run, inside
``output_dir``, that no process is using.
"""
from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from facebone import __version__

from facebone.experiment import tomlio
from facebone.errors import ConfigError
from facebone.io import atomic_write_json, atomic_write_text, non_finite, remove_stale_tmp

STEP_CHECKPOINT = re.compile(r"^step_(\d+)\.safetensors$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]*$")
STATUSES = ("running", "finished", "failed")


def check_run_name(name: str) -> str | None:
    """Why ``name`` cannot name a run directory (one safe path component), or None."""
    if not isinstance(name, str) or not SAFE_NAME.match(name) or name in (".", "..") or len(name) > 200:
        return (f"run name {name!r} is not one safe path component (letters, digits and _ . + = -, "
                "not starting with '.' or '-')")
    return None


class RunDir:
    """The files of one run under ``path``; every path of a run is a property here."""

    GIVEN = "experiment.toml"
    RESOLVED = "config.toml"
    ENVIRONMENT = "environment.json"
    RESULTS = "results.json"
    STATUS = "run.json"
    LOCK = ".run.lock"
    CHECKPOINTS = "checkpoints"
    LAST = "last.safetensors"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_fd: int | None = None

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    # -- paths ---------------------------------------------------------------------------
    @property
    def given(self) -> Path:
        return self.path / self.GIVEN

    @property
    def resolved(self) -> Path:
        return self.path / self.RESOLVED

    @property
    def environment(self) -> Path:
        return self.path / self.ENVIRONMENT

    @property
    def results(self) -> Path:
        return self.path / self.RESULTS

    @property
    def status_file(self) -> Path:
        return self.path / self.STATUS

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / self.LAST

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:07d}.safetensors"

    def eval_dir(self, name: str) -> Path:
        return self.path / "eval" / name

    def step_checkpoints(self) -> list[tuple[int, Path]]:
        """``(step, path)`` of every complete step checkpoint, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir() if (m := STEP_CHECKPOINT.match(p.name))]
        return sorted(found)

    def latest_checkpoint(self) -> Path | None:
        """``last.safetensors`` if the run finished writing it, else the newest step checkpoint."""
        if self.last_checkpoint.is_file():
            return self.last_checkpoint
        steps = self.step_checkpoints()
        return steps[-1][1] if steps else None

    # -- identity, status and the lock ---------------------------------------------------
    def is_run(self) -> bool:
        """True for a directory facebone created as a run (it has a status file)."""
        return self.status_file.is_file()

    def status(self) -> dict[str, Any]:
        """The status record (``{"status": "running" | "finished" | "failed", ...}``), {} if none."""
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def set_status(self, status: str, **info: Any) -> None:
        """Record ``status`` (and facts such as the step or the error) atomically."""
        assert status in STATUSES, status
        record = {**self.status(), **info, "status": status, "facebone": __version__,
                  "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        record.setdefault("created", record["updated"])
        atomic_write_json(self.status_file, record)

    def is_active(self) -> bool:
        """True while a process holds this run's lock (a running ``facebone run``)."""
        if self._lock_fd is not None:
            return True
        lock = self.path / self.LOCK
        if not lock.exists():
            return False
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def acquire(self) -> None:
        """Hold this run's lock until the process ends (released even on kill -9).

        Once held, no other process writes here, so temporary files that a killed write left
        behind (facebone's ``.NAME.*.tmp``) are removed.
        """
        if self._lock_fd is not None:
            return
        fd = os.open(self.path / self.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"{self.path}: another facebone process is using this run directory") from None
        self._lock_fd = fd
        self.clean_stale_tmp()

    def clean_stale_tmp(self) -> list[Path]:
        """Remove facebone's temporary files in the run and its checkpoints folder."""
        return [*remove_stale_tmp(self.path), *remove_stale_tmp(self.checkpoints)]

    def holds_results(self) -> bool:
        """True when the run has something worth keeping: a checkpoint or recorded results."""
        return self.latest_checkpoint() is not None or self.results.is_file()

    def is_reusable(self) -> bool:
        """True for a facebone run that failed or was killed before it saved anything.

        Such a directory (no checkpoint, no results, not in use) holds only the files facebone
        wrote when it started, so the next run of the same name takes its place.
        """
        return (self.path.is_dir() and not self.path.is_symlink() and self.is_run()
                and self.status().get("status") in ("failed", "running") and not self.is_active()
                and not self.holds_results())

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def create(cls, output_dir: str | os.PathLike, name: str, *, overwrite: bool = False) -> "RunDir":
        """A new run directory ``output_dir/name`` (``name-2``, ``name-3``... if taken), locked.

        With ``overwrite``, an existing ``output_dir/name`` is deleted first, but only if facebone
        marked it as a run and no process is using it; anything else there is refused. A run
        directory that failed (or was killed) before saving anything is reused
        (:meth:`is_reusable`) instead of taking the name, so retries do not pile up.
        """
        problem = check_run_name(name)
        if problem:
            raise ConfigError(f"[experiment] name: {problem}")
        base = Path(output_dir)
        if base.exists() and not base.is_dir():
            raise ConfigError(f"[experiment] output_dir {base}: exists and is not a directory")
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"[experiment] output_dir {base}: cannot create it ({exc.strerror})") from None
        candidate = base / name
        if overwrite and (candidate.exists() or candidate.is_symlink()):
            old = cls(candidate)
            if candidate.is_symlink() or not candidate.is_dir() or not old.is_run():
                raise ConfigError(f"--overwrite: {candidate} is not a facebone run directory; refusing to delete it")
            if candidate.resolve().parent != base.resolve():
                raise ConfigError(f"--overwrite: {candidate} is not inside {base}; refusing to delete it")
            if old.is_active():
                raise ConfigError(f"--overwrite: {candidate} is in use by a running facebone process")
            shutil.rmtree(candidate)
        n = 1
        while True:
            if cls(candidate).is_reusable():
                shutil.rmtree(candidate, ignore_errors=True)  # ours, inactive, nothing saved
            try:
                candidate.mkdir()
                break
            except FileExistsError:
                n += 1
                candidate = base / f"{name}-{n}"
            except OSError as exc:
                raise ConfigError(f"[experiment] output_dir {base}: cannot create {candidate.name} "
                                  f"({exc.strerror})") from None
        run = cls(candidate)
        run.acquire()
        run.set_status("running", pid=os.getpid())
        return run

    # -- files ---------------------------------------------------------------------------
    def write_run_files(self, exp: Any, overrides: list[str], plugins: Any, **environment: Any) -> None:
        """The experiment as given, the resolved configuration and the environment record."""
        source = Path(exp.source)
        given = source.read_text(encoding="utf-8") if source.is_file() else tomlio.dumps(exp.given)
        if overrides:
            given += "\n# overrides given on the command line:\n" + "".join(f"#   --set {o}\n" for o in overrides)
        atomic_write_text(self.given, given)
        header = "# Resolved configuration: every default filled in. Run again with `facebone run` on this file.\n"
        atomic_write_text(self.resolved, header + tomlio.dumps(exp.resolved()))
        atomic_write_json(self.environment, {**environment_record(plugins), **environment})

    def read_results(self) -> dict[str, Any]:
        if not self.results.is_file():
            return {}
        try:
            return json.loads(self.results.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.results}: not valid JSON ({exc})") from None

    def record_results(self, metrics: dict[str, float], *, step: int, checkpoint: str | None,
                       errors: dict[str, str] | None = None) -> dict[str, Any]:
        """Merge ``metrics`` into ``results.json`` (latest values plus a history), atomically.

        JSON has no NaN: a non-finite metric is written as ``null`` and ``"non_finite"`` says
        which value it was. ``errors`` ({evaluator name: message}) of failed evaluators replace
        the previous ones under ``"eval_errors"``.
        """
        results = self.read_results()
        results.setdefault("metrics", {}).update(metrics)
        results["step"] = step
        if checkpoint is not None:
            results["checkpoint"] = checkpoint
        bad = non_finite(metrics)
        nulls = {k: v for k, v in results.get("non_finite", {}).items() if k not in metrics}
        nulls.update({k: f"{v}: JSON cannot hold it, written as null" for k, v in bad.items()})
        if nulls:
            results["non_finite"] = nulls
        else:
            results.pop("non_finite", None)
        if errors:
            results["eval_errors"] = dict(errors)
        else:
            results.pop("eval_errors", None)
        entry: dict[str, Any] = {"step": step, "metrics": metrics}
        if errors:
            entry["eval_errors"] = dict(errors)
        results.setdefault("history", []).append(entry)
        atomic_write_json(self.results, results)
        return results

    def add_warnings(self, warnings: list[str]) -> None:
        """Add ``warnings`` (lines a user must see, e.g. a loss that never fell) to ``results.json``."""
        results = self.read_results()
        known = results.setdefault("warnings", [])
        known.extend(w for w in warnings if w not in known)
        atomic_write_json(self.results, results)


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
