"""Two gloo processes train what one process trains (backbone without batch norm), and a run
checkpointed by two processes resumes in one with the state it had."""
from __future__ import annotations

import json
import shutil

from facebone.rundir import RunDir
from train_testing import cli, experiment_dict, max_difference, tensors, train_in_process, write_experiment

NO_BATCH_NORM = {"type": "thirdnet", "width": 8, "embedding_size": 16}


def test_one_and_two_processes_agree_and_a_two_process_run_resumes_in_one(wide_set, tmp_path, third_party_site,
                                                                          plugins_with_thirdnet):
    raw = experiment_dict(wide_set, tmp_path / "runs", name="w", backbone=NO_BATCH_NORM, batch_size=32, epochs=2,
                          max_steps=20, lr=0.1, checkpoint_every=10)
    raw["data"]["image_size"] = 16
    one = train_in_process(raw, tmp_path / "one", plugins_with_thirdnet)
    env = {"PYTHONPATH": str(third_party_site)}
    result = cli("run", write_experiment(tmp_path / "w.toml", raw), "--nproc", 2, "--no-progress", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    two = RunDir(tmp_path / "runs" / "w")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["w"]  # one run directory, made by rank 0
    a, b = tensors(one), tensors(two.last_checkpoint)
    print("1 vs 2 processes, max |difference|: model", max_difference(a, b, "model."), "classifier",
          max_difference(a, b, "classifier."))
    assert max_difference(a, b, "model.") <= 1e-5
    assert max_difference(a, b, "classifier.") <= 1e-5
    assert max_difference(a, b, "model.") > 0  # two processes really summed in another order

    # the two-process run, stopped after step 10, resumed in one process
    resumed = RunDir(tmp_path / "resumed")
    shutil.copytree(two.path, resumed.path)
    resumed.last_checkpoint.unlink()
    resumed.set_status("running")
    result = cli("run", "--resume", resumed.path, "--no-progress", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step_0000010.safetensors at step 10" in result.stderr
    c = tensors(resumed.last_checkpoint)
    print("2 processes to step 10, then 1, vs 1 throughout: model", max_difference(a, c, "model."), "optimizer",
          max_difference(a, c, "optimizer."))
    assert max_difference(a, c, "model.") <= 1e-5
    assert max_difference(a, c, "optimizer.") <= 1e-5  # momentum came across whole
    status = resumed.status()
    assert status["status"] == "finished" and status["world_size"] == 1
    assert json.loads(two.environment.read_text())["world_size"] == 2
