"""facebone's heads against InsightFace arcface_torch's own ``CombinedMarginLoss`` (fixture made
by the original code: fixtures/make_insightface_fixture.py). ``arcface`` with
``straight_through = true, fallback = false`` gives its logits and its gradient; ``cosface`` and
``combined`` (m1 1, m2 0) with ``interclass_filtering_threshold`` give those of its CosFace branch."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options

FIXTURE = load_file(str(Path(__file__).parent / "fixtures" / "insightface_combined_margin.safetensors"))
PLUGINS = load_plugins()


def build(name, **options):
    comp = PLUGINS.get("head", name)
    opts, problems = build_options(comp.options, options, name)
    assert problems == []
    return comp.factory(opts, num_classes=6, embedding_size=8, seed=0)


CASES = {
    "arcface": ("arcface", {"margin": 0.5, "straight_through": True, "fallback": False}),
    "cosface": ("cosface", {"margin": 0.4}),
    "cosface_filtered": ("combined", {"m1": 1.0, "m2": 0.0, "m3": 0.4, "interclass_filtering_threshold": 0.3}),
}


@pytest.mark.parametrize("case", CASES)
def test_logits_and_gradients_equal_insightface(case):
    name, options = CASES[case]
    cos = FIXTURE["cos"].clone().requires_grad_(True)
    logits = build(name, **options)(cos, FIXTURE["labels"], None)
    logits.backward(FIXTURE["upstream"])
    torch.testing.assert_close(logits.detach(), FIXTURE[f"{case}.logits"], rtol=0, atol=2e-5)
    torch.testing.assert_close(cos.grad, FIXTURE[f"{case}.grad"], rtol=1e-6, atol=1e-6)


def test_the_fixture_reaches_the_region_where_insightface_has_no_fallback():
    """Row 0's target has theta + 0.5 > pi: InsightFace keeps cos(theta + m) (it turns back up),
    facebone's default fallback does not; the true-gradient default differs from the fixture."""
    labels = FIXTURE["labels"]
    assert FIXTURE["cos"][0, labels[0]] < -0.9
    default = build("arcface", margin=0.5)(FIXTURE["cos"], labels, None)
    assert not torch.allclose(default[0, labels[0]], FIXTURE["arcface.logits"][0, labels[0]], atol=1e-3)
    cos = FIXTURE["cos"].clone().requires_grad_(True)
    build("arcface", margin=0.5, fallback=False)(cos, labels, None).backward(FIXTURE["upstream"])
    assert not torch.allclose(cos.grad, FIXTURE["arcface.grad"], atol=1e-3)
