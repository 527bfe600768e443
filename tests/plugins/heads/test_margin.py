"""ArcFace and CosFace against their formulas, written out independently here."""
import math

import pytest
import torch

from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options

HEADS = load_plugins().registry("head")


def build(name, **opts):
    comp = HEADS.get(name)
    options, problems = build_options(comp.options, opts, name)
    assert problems == []
    return comp.factory(options, num_classes=4)


def test_arcface_target_logit_is_s_cos_theta_plus_m():
    head = build("arcface", scale=10.0, margin=0.3)
    theta = torch.tensor([0.5, 1.0])
    cos = torch.tensor([[math.cos(0.5), 0.1, 0.2], [0.3, math.cos(1.0), -0.2]])
    labels = torch.tensor([0, 1])
    logits = head(cos, labels)
    expected_target = 10.0 * torch.cos(theta + 0.3)
    assert torch.allclose(logits[[0, 1], [0, 1]], expected_target, atol=1e-5)
    assert torch.allclose(logits[0, 1:], 10.0 * cos[0, 1:])


def test_arcface_fallback_when_theta_plus_m_exceeds_pi():
    m = 0.5
    head = build("arcface", scale=1.0, margin=m)
    theta = math.pi - 0.2  # theta + m > pi
    cos = torch.tensor([[math.cos(theta), 0.0]])
    logit = head(cos, torch.tensor([0]))[0, 0].item()
    assert logit == pytest.approx(math.cos(theta) - math.sin(math.pi - m) * m, abs=1e-6)
    # the target logit stays monotonic (decreasing) in theta across the switch point
    thetas = torch.linspace(0.01, math.pi - 0.01, 400)
    cos = torch.stack([torch.cos(thetas), torch.zeros_like(thetas)], dim=1)
    target = head(cos, torch.zeros(400, dtype=torch.long))[:, 0]
    assert torch.all(target[1:] <= target[:-1] + 1e-6)


def test_cosface_subtracts_margin_at_target_only():
    head = build("cosface", scale=64.0, margin=0.35)
    cos = torch.tensor([[0.9, 0.2], [0.1, -0.4]])
    logits = head(cos, torch.tensor([0, 1]))
    expected = 64.0 * torch.tensor([[0.9 - 0.35, 0.2], [0.1, -0.4 - 0.35]])
    assert torch.allclose(logits, expected, atol=1e-5)


@pytest.mark.parametrize("name", HEADS.names())
def test_every_head_gives_finite_logits_and_gradients(name):
    head = build(name)
    cos = torch.rand(5, 7, requires_grad=True) * 2 - 1
    cos.retain_grad()
    labels = torch.randint(0, 7, (5,))
    logits = head(cos, labels, torch.ones(5, 1))
    assert logits.shape == (5, 7) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert cos.grad is not None and torch.isfinite(cos.grad).all()


def test_invalid_head_options_are_rejected():
    comp = HEADS.get("arcface")
    _, problems = build_options(comp.options, {"margin": 2.0}, "x [head]")
    assert problems and "key 'margin' must be in [0, pi/2), got 2.0" in problems[0]
