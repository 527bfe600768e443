"""Registry-driven contract tests: every backbone any installed plugin registers.

A new backbone is tested here without writing a test. The heaviest built-in nets (listed
in ``SLOW``) run under ``-m slow``; their layout and loading are tested cheaply elsewhere.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from facebone.plugin.discovery import load_plugins

SLOW = {"iresnet50", "iresnet100", "iresnet200",  # > 5 GMACs per image: seconds per step on a shared CPU
        "btnet34", "btnet50", "btnet100", "btnet200"}


def _backbone_names() -> list[str]:
    return load_plugins().registry("backbone").names()


def _params() -> list:  # type: ignore[type-arg]
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in _backbone_names()]


def build(name: str, embedding_size: int = 512, image_size: int = 112) -> torch.nn.Module:
    """Build through the core's one build path; skip a component whose optional package is absent."""
    from facebone.errors import MissingDependencyError
    from facebone.plugin.build import build_component

    comp = load_plugins().registry("backbone").get(name)
    options = comp.options() if comp.options is not None else None
    try:
        return build_component(comp, options, embedding_size=embedding_size, image_size=image_size)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


def test_registry_has_the_builtin_backbones() -> None:
    names = _backbone_names()
    for n in ("iresnet18", "iresnet34", "iresnet50", "iresnet100", "iresnet200"):
        assert n in names


def track_batch_statistics(model: torch.nn.Module) -> None:
    """Let the next train-mode forward set BN running statistics (cumulative average): fresh
    deep nets overflow in eval mode with the initial statistics."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None


@pytest.mark.parametrize("name", _params())
def test_backbone_contract_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = build(name)
    assert isinstance(model, torch.nn.Module)
    assert model.embedding_size == 512
    assert tuple(model.input_size) == (112, 112)
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    track_batch_statistics(model)
    out = model.train()(x)
    assert out.shape == (2, 512)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    loss = out.square().mean()
    for h, w in list(getattr(model, "input_sizes", ()))[1:]:  # a routing backbone: every path it serves
        other = model(torch.rand(2, 3, h, w) * 2 - 1)
        assert other.shape == (2, 512) and torch.isfinite(other).all(), (h, w)
        loss = loss + other.square().mean()
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    with torch.no_grad():
        model.eval()
        a, b = model(x), model(x[:1])
    assert torch.isfinite(a).all()
    scale = a.abs().max().item()  # untrained nets can have large outputs: compare relative to it
    torch.testing.assert_close(a[:1], b, rtol=1e-3, atol=1e-4 * scale)  # eval: samples independent


@pytest.mark.parametrize("name", _params())
def test_backbone_honours_embedding_size(name: str) -> None:
    comp = load_plugins().registry("backbone").get(name)
    if comp.options is not None:
        assert dataclasses.is_dataclass(comp.options)
    model = build(name, embedding_size=128).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 112, 112)).shape == (1, 128)
    assert model.embedding_size == 128


def test_hook_modules_do_not_import_torch() -> None:
    """Discovery stays fast: registering the built-in backbones must not import torch."""
    import subprocess
    import sys

    mods = ["iresnet", "mobilefacenet", "shufflefacenet", "mixfacenet", "btnet"]
    code = ("import sys\n" + "".join(f"import facebone.plugins.backbones.{m}\n" for m in mods)
            + "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
