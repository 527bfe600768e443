"""CUDA paths: nccl, fp16 with a checkpointed GradScaler, bf16, pinned memory, channels-last.
Skipped without a GPU (``pytest -m cuda`` on a GPU machine; ``benchmarks/gpu_check.sh`` runs them)."""
from __future__ import annotations

import json

import pytest
import torch

from facebone.data.global_batches import GlobalBatchSampler, make_batch_loader
from facebone.rundir import RunDir
from facebone.weights.checkpoint import read_checkpoint
from train_testing import cli, experiment_dict, tensors, train_in_process, write_experiment

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
DETERMINISTIC = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


@pytest.fixture(autouse=True)
def _cublas(monkeypatch):
    for key, value in DETERMINISTIC.items():
        monkeypatch.setenv(key, value)


def test_fp16_trains_with_a_grad_scaler_whose_state_is_checkpointed_and_resumed(tiny_set, tmp_path):
    raw = experiment_dict(tiny_set, tmp_path / "runs", name="fp16", precision="fp16", epochs=2, checkpoint_every=6,
                          device="cuda")
    exp = write_experiment(tmp_path / "fp16.toml", raw)
    result = cli("run", exp, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    run = RunDir(tmp_path / "runs" / "fp16")
    state = json.loads(read_checkpoint(run.last_checkpoint)[1]["training_state"])
    assert state["scaler"]["scale"] > 0 and "_growth_tracker" in state["scaler"]
    final = run.last_checkpoint.read_bytes()
    run.last_checkpoint.unlink()
    for step, path in run.step_checkpoints():
        if step > 6:
            path.unlink()
    run.set_status("running")
    resumed = cli("run", "--resume", run.path, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run.last_checkpoint.read_bytes() == final  # scaler, CUDA generator and all restored exactly


def test_bf16_on_cuda_keeps_fp32_master_weights(tiny_set, tmp_path):
    raw = experiment_dict(tiny_set, tmp_path / "runs", precision="bf16", max_steps=4, device="cuda",
                          channels_last=True)
    weights = tensors(train_in_process(raw, tmp_path / "bf16"))
    assert weights["model.backbone.fc.weight"].dtype == torch.float32
    assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())


def test_batches_come_in_pinned_memory(tiny_set):
    from facebone.data import open_training_set

    dataset = open_training_set(tiny_set, image_size=32)
    loader = make_batch_loader(dataset, GlobalBatchSampler(len(dataset), 8, seed=0), num_workers=2, pin_memory=True)
    images, labels = next(iter(loader))
    assert images.is_pinned() and labels.is_pinned()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="nccl needs two GPUs")
def test_two_nccl_processes_train_and_resume_exactly(tiny_set, tmp_path):
    raw = experiment_dict(tiny_set, tmp_path / "runs", name="nccl", epochs=2, checkpoint_every=6, device="cuda")
    exp = write_experiment(tmp_path / "nccl.toml", raw)
    result = cli("run", exp, "--nproc", 2, "--no-progress", env=DETERMINISTIC)
    assert result.returncode == 0, result.stderr[-3000:]
    run = RunDir(tmp_path / "runs" / "nccl")
    environment = json.loads(run.environment.read_text())
    assert environment["backend"] == "nccl" and [d["device"] for d in environment["devices"]] == ["cuda:0", "cuda:1"]
    final = run.last_checkpoint.read_bytes()
    run.last_checkpoint.unlink()
    run.set_status("running")
    resumed = cli("run", "--resume", run.path, "--nproc", 2, "--no-progress", env=DETERMINISTIC)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run.last_checkpoint.read_bytes() == final
