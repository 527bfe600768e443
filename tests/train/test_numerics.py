"""Non-finite losses skip their step and stop the run after [train] max_nonfinite in a row, with a
usable checkpoint; channels-last training."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from facebone.errors import ConfigError
from facebone.experiment.config import validate
from facebone.train import loop
from facebone.train.loop import Trainer
from facebone.weights.checkpoint import read_checkpoint
from train_testing import experiment_dict, max_difference, tensors, train_in_process


class PoisonedObjective(nn.Module):
    """The real objective, whose loss is NaN on the chosen calls (1-based)."""

    def __init__(self, inner: nn.Module, poisoned: set[int]):
        super().__init__()
        self.inner, self.poisoned, self.calls = inner, poisoned, 0

    def forward(self, batch, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        terms = self.inner(batch, **kwargs)
        if self.calls in self.poisoned:
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms


def poison(monkeypatch, calls: set[int]) -> None:
    build = loop.build_parts

    def poisoned_build(exp, ranks, **kwargs):  # type: ignore[no-untyped-def]
        parts = build(exp, ranks, **kwargs)
        parts.objective = PoisonedObjective(parts.objective, calls)
        return parts

    monkeypatch.setattr(loop, "build_parts", poisoned_build)


def test_a_nonfinite_loss_skips_its_step_only(tiny_set, tmp_path, monkeypatch):
    poison(monkeypatch, {3})
    messages: list[str] = []
    run = tmp_path / "skip"
    run.mkdir()
    raw = experiment_dict(tiny_set, tmp_path / "runs", max_steps=5, max_nonfinite=2)
    Trainer(validate(raw, source="t"), run, log=messages.append, progress=False).fit()
    assert any(m.startswith("step 3: non-finite loss (ce=nan); step skipped (1 in a row, 1 in all)") for m in messages)
    tensors_, meta = read_checkpoint(run / "checkpoints" / "last.safetensors")
    assert all(torch.isfinite(t).all() for k, t in tensors_.items() if t.is_floating_point())
    position = json.loads(meta["training_state"])["position"]
    assert position["step"] == 5 and position["nonfinite_total"] == 1 and position["nonfinite_run"] == 0


def test_consecutive_nonfinite_losses_stop_the_run_with_the_last_good_weights(tiny_set, tmp_path, monkeypatch):
    poison(monkeypatch, set(range(3, 100)))
    run = tmp_path / "stop"
    run.mkdir()
    raw = experiment_dict(tiny_set, tmp_path / "runs", max_steps=9, max_nonfinite=3, checkpoint_every=2)
    with pytest.raises(ConfigError, match=r"^training stopped at step 5: 3 consecutive non-finite losses "
                                          r"\(\[train\] max_nonfinite = 3\); the weights before them are in .*"
                                          r"step_0000005.safetensors; lower \[train\] lr"):
        Trainer(validate(raw, source="t"), run, log=lambda m: None, progress=False).fit()
    stopped, good = tensors(run / "checkpoints" / "step_0000005.safetensors"), tensors(
        run / "checkpoints" / "step_0000002.safetensors")
    assert max_difference(stopped, good, "model.") == 0.0  # steps 3-5 changed nothing
    assert max_difference(stopped, good, "optimizer.") == 0.0
    assert not (run / "checkpoints" / "last.safetensors").exists()


def test_channels_last_training(tiny_set, tmp_path):
    raw = experiment_dict(tiny_set, tmp_path / "runs", max_steps=3)
    plain = tensors(train_in_process(raw, tmp_path / "plain"))
    raw["train"]["channels_last"] = True
    run = tmp_path / "cl"
    run.mkdir()
    trainer = Trainer(validate(raw, source="t"), run, log=lambda m: None, progress=False)
    trainer.fit()
    conv = next(m for m in trainer.parts.face_model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert max_difference(plain, tensors(run / "checkpoints" / "last.safetensors"), "model.") < 1e-4
