"""RunDir: names, --overwrite, the lock, reuse of failed runs, stale temporary files."""
from __future__ import annotations

import json

import pytest

from facebone.errors import ConfigError
from facebone.rundir import RunDir, check_run_name


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "/etc", ".hidden", "-rf", "x" * 201, "a\\b", "tab\tname"])
def test_unsafe_run_names_are_refused(name, tmp_path):
    assert check_run_name(name) is not None
    with pytest.raises(ConfigError, match="not one safe path component"):
        RunDir.create(tmp_path / "runs", name)
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize("name", ["quickstart", "r50_gwp", "ms1m-v3.r100", "a+b=c", "_x"])
def test_ordinary_names_are_fine(name):
    assert check_run_name(name) is None


def test_a_failed_run_that_saved_nothing_is_reused(tmp_path):
    first = RunDir.create(tmp_path, "t")
    (first.tensorboard).mkdir()
    first.set_status("failed", error="DataError: bad record")
    first.release()
    again = RunDir.create(tmp_path, "t")
    assert again.path == tmp_path / "t" and not (tmp_path / "t-2").exists()
    assert again.status()["status"] == "running" and "error" not in again.status()
    assert not again.tensorboard.exists()  # the failed run's files went with it


def test_a_killed_run_is_reused_but_one_with_a_checkpoint_or_results_is_kept(tmp_path):
    killed = RunDir.create(tmp_path, "k")
    killed.release()  # like kill -9: status stays "running", the lock is free
    assert RunDir(killed.path).is_reusable()
    assert RunDir.create(tmp_path, "k").path.name == "k"

    with_ckpt = RunDir.create(tmp_path, "c")
    with_ckpt.step_checkpoint(10).parent.mkdir()
    with_ckpt.step_checkpoint(10).write_bytes(b"weights")
    with_ckpt.set_status("failed")
    with_ckpt.release()
    assert RunDir.create(tmp_path, "c").path.name == "c-2"
    assert with_ckpt.step_checkpoint(10).read_bytes() == b"weights"

    with_results = RunDir.create(tmp_path, "r")
    with_results.record_results({"m": 1.0}, step=1, checkpoint=None)
    with_results.set_status("failed")
    with_results.release()
    assert RunDir.create(tmp_path, "r").path.name == "r-2"


def test_a_running_run_and_a_foreign_folder_are_never_reused(tmp_path):
    active = RunDir.create(tmp_path, "a")  # still holds its lock
    assert not RunDir(active.path).is_reusable()
    assert RunDir.create(tmp_path, "a").path.name == "a-2"
    with pytest.raises(ConfigError, match="in use by a running facebone process"):
        RunDir.create(tmp_path, "a", overwrite=True)
    mine = tmp_path / "m"
    mine.mkdir()
    (mine / "run.json").write_text("not json")  # no status: not a failed run
    assert not RunDir(mine).is_reusable()
    assert RunDir.create(tmp_path, "m").path.name == "m-2" and (mine / "run.json").read_text() == "not json"


def test_stale_temporary_files_are_removed_when_the_lock_is_taken(tmp_path):
    run = RunDir.create(tmp_path, "t")
    run.checkpoints.mkdir()
    run.release()
    stale = [run.checkpoints / ".last.safetensors.k2j3h4g5.tmp", run.checkpoints / ".step_0000010.safetensors.123.tmp",
             run.path / ".results.json.abcdefgh.tmp"]
    kept = [run.checkpoints / "notes.tmp", run.checkpoints / "step_0000010.safetensors", run.path / ".tmp",
            run.checkpoints / ".x.tmp"]
    for p in stale + kept:
        p.write_bytes(b"x")
    (run.checkpoints / ".dir.abcd.tmp").mkdir()  # a directory is never facebone's temporary file
    (run.checkpoints / ".link.abcd.tmp").symlink_to(kept[0])
    other = RunDir(run.path)
    other.acquire()
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert (run.checkpoints / ".dir.abcd.tmp").is_dir() and (run.checkpoints / ".link.abcd.tmp").is_symlink()
    other.release()


def test_results_never_hold_bare_nan_and_say_why(tmp_path):
    run = RunDir.create(tmp_path, "t")
    run.record_results({"a": float("nan"), "b": 0.5, "c": float("inf")}, step=3, checkpoint="x")
    text = run.results.read_text()
    results = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} written"))
    assert results["metrics"] == {"a": None, "b": 0.5, "c": None}
    assert results["non_finite"]["a"].startswith("nan") and results["non_finite"]["c"].startswith("inf")
    run.record_results({"a": 0.25}, step=4, checkpoint="x", errors={"ijb": "DataError: gone"})
    results = json.loads(run.results.read_text())
    assert results["metrics"]["a"] == 0.25 and "a" not in results["non_finite"]
    assert results["eval_errors"] == {"ijb": "DataError: gone"} and results["history"][-1]["eval_errors"]
    run.add_warnings(["loss did not fall"])
    run.add_warnings(["loss did not fall"])
    assert json.loads(run.results.read_text())["warnings"] == ["loss did not fall"]
