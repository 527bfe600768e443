"""The trainer: schedule, determinism, precision, periodic evaluation."""
import json
from pathlib import Path

import pytest
import torch

from facebone.weights.checkpoint import read_checkpoint
from facebone.experiment.config import validate
from facebone.data import generate_synthetic
from facebone.plugin.discovery import load_plugins
from facebone.errors import ConfigError
from facebone.train.loop import Trainer

PLUGINS = load_plugins()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    generate_synthetic(root / "data", identities=12, images_per_identity=6, holdout_identities=6, pairs=40,
                       image_size=32, seed=1, progress=False)
    return root


def experiment(root: Path, **train):
    raw = {
        "experiment": {"name": "t", "seed": 3, "output_dir": str(root / "runs")},
        "data": {"train": str(root / "data"), "image_size": 32},
        "backbone": {"type": "iresnet18", "width": 8, "embedding_size": 16},
        "head": {"type": "cosface", "scale": 16.0},
        "train": {"batch_size": 16, "epochs": 1, "max_steps": 3, "lr": 0.05, "log_every": 1, **train},
        "eval": [{"type": "verification", "targets": ["holdout"]}],
    }
    return validate(raw, source="test", plugins=PLUGINS)


def train_once(root: Path, name: str, **train) -> tuple[dict, dict]:
    run = root / name
    run.mkdir()
    metrics = Trainer(experiment(root, **train), run, log=lambda m: None, progress=False).fit()
    tensors, _ = read_checkpoint(run / "checkpoints" / "last.safetensors")
    return metrics, tensors


def test_training_is_deterministic_on_cpu(tiny_data):
    metrics_a, a = train_once(tiny_data, "a")
    metrics_b, b = train_once(tiny_data, "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.dumps(metrics_a, sort_keys=True) == json.dumps(metrics_b, sort_keys=True)  # NaN-aware
    _, c = train_once(tiny_data, "c", lr=0.01)
    assert not torch.equal(a["model.backbone.fc.weight"], c["model.backbone.fc.weight"])


def test_periodic_evaluation_and_checkpoints(tiny_data):
    run = tiny_data / "periodic"
    run.mkdir()
    Trainer(experiment(tiny_data, max_steps=4, eval_every=2, checkpoint_every=2), run, log=lambda m: None,
            progress=False).fit()
    history = json.loads((run / "results.json").read_text())["history"]
    assert [h["step"] for h in history] == [2, 4]
    assert (run / "checkpoints" / "step_0000002.safetensors").is_file()
    _, meta = read_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["step"] == "4" and meta["backbone"] == "iresnet18"


def test_bf16_autocast_trains_on_cpu(tiny_data):
    metrics, tensors = train_once(tiny_data, "bf16", precision="bf16", optimizer="adamw", lr=1e-3)
    assert tensors["model.backbone.fc.weight"].dtype == torch.float32  # master weights stay fp32
    assert 0.0 <= metrics["holdout/accuracy"] <= 1.0


def test_fp16_on_cpu_is_a_user_error(tiny_data):
    with pytest.raises(ConfigError, match="fp16.*needs CUDA"):
        Trainer(experiment(tiny_data, precision="fp16"), tiny_data, log=lambda m: None)


def test_batch_larger_than_the_data_is_a_user_error(tiny_data):
    run = tiny_data / "big"
    run.mkdir()
    with pytest.raises(ConfigError, match=r"\[train\] batch_size: 4096 is larger than the 72 training images"):
        Trainer(experiment(tiny_data, batch_size=4096), run, log=lambda m: None, progress=False).fit()
