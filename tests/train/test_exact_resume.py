"""kill -9 at a random step after a checkpoint, then --resume: the final checkpoint is bitwise
identical to that of an uninterrupted run (one process with 0 or 2 loader workers; 2 gloo processes)."""
from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from facebone.rundir import RunDir
from train_testing import cli, experiment_dict, kill_tree, popen, train_in_process, with_eval, write_experiment

STEPS, EVERY = 27, 3  # 3 epochs of 9 steps of 8 images; a checkpoint every 3 steps


def resumable(tiny_set: Path, out: Path, name: str, **train) -> dict:
    return experiment_dict(tiny_set, out, name=name, epochs=3, checkpoint_every=EVERY, **train)


def kill_at_random_step(args: list, run: RunDir, env: dict | None = None, cwd: Path | None = None) -> int:
    """Start ``facebone run ARGS``; kill -9 it (all its processes) a random moment after a random
    checkpoint; returns that checkpoint's step."""
    chooser = random.Random()
    target = chooser.randrange(EVERY, STEPS - 2 * EVERY + 1, EVERY)
    proc = popen("run", *args, "--no-progress", env=env, cwd=cwd)
    deadline = time.monotonic() + 300
    while not any(step >= target for step, _ in run.step_checkpoints()):
        assert proc.poll() is None, f"the run ended before step {target}: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(chooser.uniform(0.0, 0.05))
    kill_tree(proc)  # the launcher and, with --nproc, its workers
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not run.last_checkpoint.exists(), f"killed after step {target} too late: the run had finished"
    assert run.status()["status"] == "running"  # what a killed run leaves
    return target


def resume(run: RunDir, env: dict | None = None, extra: tuple = ()) -> str:
    result = cli("run", "--resume", run.path, "--no-progress", *extra, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run.status()["status"] == "finished"
    return result.stderr


@pytest.fixture(scope="module")
def uninterrupted(tiny_set, tmp_path_factory) -> Path:
    """The last checkpoint of an uninterrupted one-process run (with evaluations on the way)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    raw = with_eval(resumable(tiny_set, out / "runs", "killed", eval_every=9))
    return train_in_process(raw, out / "ref")


@pytest.mark.parametrize("workers", [0, 2])
def test_kill_and_resume_is_bitwise_identical_in_one_process(workers, uninterrupted, tiny_set, tmp_path):
    raw = with_eval(resumable(tiny_set, tmp_path / "runs", "killed", eval_every=9, keep_last=2))
    raw["data"]["num_workers"] = workers
    exp = write_experiment(tmp_path / "killed.toml", raw)
    run = RunDir(tmp_path / "runs" / "killed")
    step = kill_at_random_step([exp], run)
    if workers == 0:  # an unfinished run evaluates from its latest checkpoint, and says so
        evaluated = cli("eval", run.path)
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        assert "run is running, no last.safetensors; using its latest checkpoint step_" in evaluated.stderr
    log = resume(run)
    assert f"resumed from step_{step:07d}" in log or "resumed from step_" in log
    assert run.last_checkpoint.read_bytes() == uninterrupted.read_bytes(), f"killed after step {step}"
    assert len(run.step_checkpoints()) <= 2  # keep_last
    ref = json.loads((uninterrupted.parents[1] / "results.json").read_text())
    got = json.loads(run.results.read_text())
    assert [h["step"] for h in got["history"]] == [h["step"] for h in ref["history"]] == [9, 18, STEPS]
    assert got["metrics"] == ref["metrics"]


def test_kill_and_resume_is_bitwise_identical_with_two_gloo_processes(tiny_set, tmp_path):
    raw = resumable(tiny_set, tmp_path / "runs", "two")
    exp = write_experiment(tmp_path / "two.toml", raw)
    reference = cli("run", exp, "--nproc", 2, "--no-progress", "--set", f"experiment.output_dir={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr[-3000:]
    ref = RunDir(tmp_path / "ref" / "two")
    run = RunDir(tmp_path / "runs" / "two")
    step = kill_at_random_step([exp, "--nproc", 2], run)
    resume(run, extra=("--nproc", 2))
    assert run.last_checkpoint.read_bytes() == ref.last_checkpoint.read_bytes(), f"killed after step {step}"
    environment = json.loads(ref.environment.read_text())
    assert environment["world_size"] == 2 and environment["backend"] == "gloo"
    assert [d["rank"] for d in environment["devices"]] == [0, 1]
