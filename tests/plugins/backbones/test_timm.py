"""The `timm` backbone: any timm model at the experiment's size, clear errors without timm or with a bad name."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from facebone.cli import main
from facebone.errors import MissingDependencyError
from facebone.plugins.backbones import timm_backbone as tb

needs_timm = pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm not installed")


@needs_timm
@pytest.mark.parametrize("model", ["resnet10t", "vit_tiny_patch16_224"])
def test_small_timm_models_embed_at_the_experiment_size(model: str) -> None:
    torch.manual_seed(0)
    net = tb.build_timm(tb.TimmOptions(model=model), embedding_size=64, image_size=64)
    assert net.embedding_size == 64 and tuple(net.input_size) == (64, 64)
    out = net.train()(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert out.shape == (3, 64) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert net.fc.weight.grad is not None and net.fc.weight.grad.abs().sum() > 0


@needs_timm
def test_unknown_model_name_is_refused_with_a_suggestion() -> None:
    problems = tb.check_timm(tb.TimmOptions(model="vit_tiny_patch16_22"), {})
    assert len(problems) == 1 and "vit_tiny_patch16_224" in problems[0] and "list_models" in problems[0]


def test_without_timm_a_clear_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a))
    (problem,) = tb.check_timm(tb.TimmOptions(), {})
    assert "pip install 'facebone[timm]'" in problem
    with pytest.raises(MissingDependencyError, match="timm"):
        tb.build_timm(tb.TimmOptions(), embedding_size=8, image_size=32)


@needs_timm
def test_facebone_check_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    exp = tmp_path / "vit.toml"
    (tmp_path / "data").mkdir()
    exp.write_text(f'[data]\ntrain = "{tmp_path / "data"}"\n[backbone]\ntype = "timm"\nmodel = "convnext_atoo"\n')
    assert main(["check", str(exp)]) == 2
    err = capsys.readouterr().err
    assert "[backbone]" in err and "convnext_atto" in err and "Traceback" not in err
