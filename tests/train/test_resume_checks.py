"""`facebone run --resume` refuses, in one line and exit 2, what it cannot resume."""
from __future__ import annotations

from pathlib import Path

import pytest

from facebone.experiment import tomlio
from facebone.experiment.config import validate
from facebone.rundir import RunDir
from train_testing import cli, experiment_dict, write_experiment


@pytest.fixture
def stopped_run(tiny_set, tmp_path) -> tuple[RunDir, Path]:
    """A run directory as a killed run leaves it: status running, a step checkpoint, no lock held."""
    raw = experiment_dict(tiny_set, tmp_path / "runs", name="stopped", checkpoint_every=2)
    exp_file = write_experiment(tmp_path / "stopped.toml", raw)
    run = RunDir.create(tmp_path / "runs", "stopped")
    run.write_run_files(validate(raw, source=str(exp_file)), [], _no_plugins())
    run.release()
    run.checkpoints.mkdir()
    run.step_checkpoint(2).write_bytes(b"")
    return run, exp_file


def _no_plugins():  # type: ignore[no-untyped-def]
    from facebone.plugin.discovery import Plugins

    return Plugins()


def refused(*args) -> str:
    result = cli("run", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facebone: error: --resume"), result.stderr
    return lines[0]


def test_a_directory_that_is_not_a_run(tmp_path):
    assert "no such directory" in refused("--resume", tmp_path / "nowhere")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert "not a facebone run directory" in refused("--resume", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_finished_run(stopped_run):
    run, _ = stopped_run
    run.set_status("finished")
    assert "the run finished; nothing to resume" in refused("--resume", run.path)


def test_a_run_in_use(stopped_run):
    run, _ = stopped_run
    run.acquire()
    try:
        assert "in use by a running facebone process" in refused("--resume", run.path)
    finally:
        run.release()


def test_a_run_without_checkpoint(stopped_run):
    run, _ = stopped_run
    run.step_checkpoint(2).unlink()
    assert "wrote no checkpoint" in refused("--resume", run.path)


def test_an_experiment_whose_keys_differ_names_every_key(stopped_run, tmp_path):
    run, exp_file = stopped_run
    line = refused(exp_file, "--resume", run.path, "--set", "train.lr=0.2", "--set", "head.margin=0.3")
    assert "differs from the run's config.toml in head.margin, train.lr;" in line
    other = tomlio.loads(exp_file.read_text())
    other["train"]["batch_size"] = 4
    line = refused(write_experiment(tmp_path / "other.toml", other), "--resume", run.path)
    assert "in train.batch_size;" in line
    line = refused("--resume", run.path, "--set", "train.epochs=9")
    assert "in train.epochs;" in line
    assert run.status()["status"] == "running"  # nothing was touched
