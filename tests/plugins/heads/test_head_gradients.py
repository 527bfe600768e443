"""Gradients of every built-in head: torch.autograd.gradcheck in float64 (fallback regions and -1
labels included), and the straight-through gradient of ``arcface`` asserted exactly."""
import math

import pytest
import torch
from torch.autograd import gradcheck

from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options

PLUGINS = load_plugins()
N, C = 10, 6


def build(name, **options):
    comp = PLUGINS.get("head", name)
    opts, problems = build_options(comp.options, options, name)
    assert problems == []
    return comp.factory(opts, num_classes=C, embedding_size=8, seed=5)


def inputs(seed=0, special=()):
    g = torch.Generator().manual_seed(seed)
    cos = torch.rand(N, C, generator=g, dtype=torch.float64) * 1.9 - 0.95
    labels = torch.randint(0, C, (N,), generator=g)
    labels[[2, 6]] = -1
    for i, value in enumerate(special):
        cos[i, labels[i]] = value
    norms = torch.rand(N, 1, generator=g, dtype=torch.float64) * 120 + 2  # MagFace: below, in, above [10, 110]
    return cos, labels, norms


def frozen_state(head):
    """A function of (cos, norms) that restores the head's state first, so that stateful heads
    (EMA, counters, generators) give the same function at every gradcheck evaluation."""
    state = {k: v.clone() for k, v in head.state_dict().items()}

    def f(cos, norms, labels):
        head.load_state_dict(state)
        return head(cos, labels, norms)

    return f


CASES = [
    ("arcface", {}, [-0.99, -0.9, 0.3]),                 # -0.99, -0.9: fallback region
    ("arcface", {"easy_margin": True}, [-0.5, 0.5]),
    ("arcface", {"fallback": False}, [-0.99, 0.2]),
    ("cosface", {}, []),
    ("subcenter", {}, [-0.99, 0.4]),
    ("combined", {}, [-0.5, 0.8]),
    ("combined", {"m1": 1.35, "m2": 0.4, "m3": 0.1, "monotonic": True}, [-0.99, -0.8, 0.6]),
    ("combined", {"interclass_filtering_threshold": 0.3}, [0.7]),
    ("sphereface", {}, [-0.95, -0.8, 0.5]),              # m*theta > pi for the first two
    ("sphereface", {"margin": 4.0, "feature_scale": True, "anneal_base": 1000.0}, [-0.9, 0.1, 0.7]),
    ("adaface", {}, [0.9, -0.3]),
    ("curricularface", {}, [-0.93, 0.2, 0.6]),
    ("magface", {}, [-0.6, 0.4]),
    ("magface", {"easy_margin": False}, [-0.99, 0.4]),
    ("elasticface_arc", {}, [0.5]),
    ("elasticface_cos", {}, [0.5]),
]


@pytest.mark.parametrize("name, options, special", CASES)
def test_gradcheck_float64(name, options, special):
    head = build(name, **options)
    cos, labels, norms = inputs(len(special), special)
    cos.requires_grad_(True)
    norms.requires_grad_(name == "magface" or options.get("feature_scale", False))
    with torch.no_grad():  # some state to start from (EMA statistics, t, step, generator)
        for _ in range(2):
            head(cos, labels, norms)
    if name == "curricularface":
        head.eval()  # t is a no-grad statistic of the target cosines: constant for the gradient
    f = frozen_state(head)
    assert gradcheck(lambda c, n: f(c, n, labels), (cos, norms), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradcheck_magface_regulariser_and_adaface_detaches_norms():
    head = build("magface")
    _, _, norms = inputs(1)
    norms.requires_grad_(True)
    assert gradcheck(lambda n: head.loss_terms(n)["magface_g"], (norms,), eps=1e-6, atol=1e-6)
    cos, labels, norms = inputs(2)
    norms.requires_grad_(True)
    build("adaface")(cos.requires_grad_(True), labels, norms).sum().backward()
    assert norms.grad is None and cos.grad is not None  # AdaFace's formula detaches the norms


def test_gradient_is_the_true_derivative_by_default():
    """d logit_y / d cos_y = s * d cos(theta + m) / d cos(theta) = s*(cos m + cos*sin m/sin(theta))."""
    cos, labels, norms = inputs(3, [0.3])
    cos.requires_grad_(True)
    build("arcface")(cos, labels, norms)[0, labels[0]].backward()
    c, m = 0.3, 0.5
    want = 64.0 * (math.cos(m) + c * math.sin(m) / math.sqrt(1 - c * c))
    assert cos.grad[0, labels[0]].item() == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("fallback", [True, False])
def test_straight_through_gradient_is_s_for_every_cosine(fallback):
    cos, labels, norms = inputs(4, [-0.99, 0.3, 0.8])
    cos.requires_grad_(True)
    head = build("arcface", straight_through=True, fallback=fallback)
    out = head(cos, labels, norms)
    upstream = torch.randn(N, C, dtype=torch.float64)
    out.backward(upstream)
    assert torch.equal(cos.grad, 64.0 * upstream)  # exactly, targets included
    true_head = build("arcface", fallback=fallback)
    torch.testing.assert_close(out.detach(), true_head(cos.detach(), labels, norms), rtol=0, atol=1e-12)
    cos.grad = None
    true_head(cos, labels, norms).backward(upstream)
    rows = labels >= 0
    targets = cos.grad[torch.arange(N)[rows], labels[rows]]
    assert not torch.allclose(targets, 64.0 * upstream[torch.arange(N)[rows], labels[rows]])


def test_straight_through_with_clamped_cosines_has_no_gradient_outside_the_range():
    """As InsightFace: the cosines are clamped to [-1, 1] before the margin."""
    cos = torch.tensor([[1.5, 0.2], [0.1, -1.2]], dtype=torch.float64, requires_grad=True)
    build("arcface", straight_through=True)(cos, torch.tensor([1, 0]), None).sum().backward()
    assert cos.grad.tolist() == [[0.0, 64.0], [64.0, 0.0]]
