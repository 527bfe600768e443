"""Each built-in head's logits against an independent, row-by-row computation of its published
formula (plain Python math on float64), on random cosines and norms, with -1 labels and every
fallback region present (each test asserts that its special rows really occur)."""
import math

import numpy as np
import pytest
import torch

from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options

PLUGINS = load_plugins()
BUILTIN = [c.name for c in PLUGINS.registry("head") if c.provider.dist == "facebone"]
N, C = 24, 9


def build(name, seed=0, **options):
    comp = PLUGINS.get("head", name)
    opts, problems = build_options(comp.options, options, name)
    assert problems == []
    return comp.factory(opts, num_classes=C, embedding_size=8, seed=seed)


def sample(seed=0, n=N, c=C, special=()):
    """Cosines in (-1, 1), labels with -1 rows, norms in [2, 40]; ``special`` target cosines are
    written into the first rows (to reach fallback and clip regions)."""
    rng = np.random.default_rng(seed)
    cos = rng.uniform(-0.999, 0.999, (n, c))
    labels = rng.integers(0, c, n)
    labels[[3, 7, 11]] = -1
    for i, value in enumerate(special):
        cos[i, labels[i]] = value
    norms = rng.uniform(2.0, 40.0, (n, 1))
    return cos, labels, norms


def run(head, cos, labels, norms):
    with torch.no_grad():
        out = head(torch.tensor(cos), torch.tensor(labels), torch.tensor(norms))
    assert out.dtype == torch.float64 and out.shape == cos.shape
    return out.numpy()


def check_untouched(out, cos, labels, scale):
    """Rows with label -1 are s*cos everywhere."""
    rows = labels < 0
    assert rows.any()
    np.testing.assert_allclose(out[rows], scale * np.clip(cos[rows], -1, 1), rtol=0, atol=1e-12)


def arc_value(c, m, easy_margin=False, fallback=True):
    theta = math.acos(c)
    if easy_margin:
        return math.cos(theta + m) if c > 0 else c
    if fallback and not c > math.cos(math.pi - m):
        return c - m * math.sin(m)
    return math.cos(theta + m)


def reference(cos, labels, target_fn, scale, other_fn=None):
    out = np.clip(cos, -1, 1).copy()
    for i, y in enumerate(labels):
        if y < 0:
            continue
        c = out[i, y]
        if other_fn is not None:
            for j in range(out.shape[1]):
                if j != y:
                    out[i, j] = other_fn(out[i, j], c, i)
        out[i, y] = target_fn(c, i)
    return scale * out


# -- arcface, cosface, subcenter ----------------------------------------------------------

@pytest.mark.parametrize("opts", [{}, {"easy_margin": True}, {"fallback": False}, {"straight_through": True},
                                  {"margin": 0.3, "scale": 30.0}])
def test_arcface(opts):
    m, s = opts.get("margin", 0.5), opts.get("scale", 64.0)
    cos, labels, norms = sample(1, special=[-0.99, -0.97, -0.95, -0.2, 0.999])
    assert (cos[np.arange(N), labels][labels >= 0] < math.cos(math.pi - m)).sum() >= 2  # fallback rows
    out = run(build("arcface", **opts), cos, labels, norms)
    want = reference(cos, labels, lambda c, i: arc_value(c, m, opts.get("easy_margin", False),
                                                         opts.get("fallback", True)), s)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-9)
    check_untouched(out, cos, labels, s)


def test_cosface():
    cos, labels, norms = sample(2)
    out = run(build("cosface", margin=0.35), cos, labels, norms)
    np.testing.assert_allclose(out, reference(cos, labels, lambda c, i: c - 0.35, 64.0), rtol=0, atol=1e-12)
    check_untouched(out, cos, labels, 64.0)


def test_subcenter_takes_the_best_centre_then_arcface():
    rng = np.random.default_rng(3)
    cos3 = rng.uniform(-0.999, 0.999, (N, C, 3))
    _, labels, norms = sample(3)
    head = build("subcenter")
    with torch.no_grad():
        out = head(torch.tensor(cos3), torch.tensor(labels), torch.tensor(norms)).numpy()
    best = cos3.max(axis=2)
    want = reference(best, labels, lambda c, i: arc_value(c, 0.5), 64.0)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(run(head, best, labels, norms), want, rtol=0, atol=1e-9)  # reduced already


# -- combined, sphereface -----------------------------------------------------------------

def psi_value(phi):
    k = math.floor(phi / math.pi)
    return (-1) ** k * math.cos(phi) - 2 * k


@pytest.mark.parametrize("m1, m2, m3, monotonic", [(1.0, 0.3, 0.2, False), (0.9, 0.4, 0.15, False),
                                                   (1.35, 0.5, 0.1, True), (1.35, 0.5, 0.1, False),
                                                   (1.0, 0.0, 0.35, False)])
def test_combined_applies_all_three_margins(m1, m2, m3, monotonic):
    cos, labels, norms = sample(4, special=[-0.99, -0.9, -0.7, 0.95])
    out = run(build("combined", m1=m1, m2=m2, m3=m3, monotonic=monotonic), cos, labels, norms)

    def target(c, i):
        phi = m1 * math.acos(c) + m2
        return (psi_value(phi) if monotonic else math.cos(phi)) - m3

    np.testing.assert_allclose(out, reference(cos, labels, target, 64.0), rtol=0, atol=1e-9)
    check_untouched(out, cos, labels, 64.0)
    if m1 > 1:  # past pi: psi differs from cos there
        phis = m1 * np.arccos(cos[np.arange(N), labels]) + m2
        assert (phis[labels >= 0] > math.pi).sum() >= 2


def test_combined_interclass_filtering():
    cos, labels, norms = sample(5, special=[0.6, 0.9])
    tau = 0.5
    out = run(build("combined", interclass_filtering_threshold=tau), cos, labels, norms)
    want = np.zeros_like(cos)
    for i, y in enumerate(labels):
        for j in range(C):
            c = cos[i, j]
            if y >= 0 and j == y:
                want[i, j] = math.cos(math.acos(c) + 0.3) - 0.2
            else:
                want[i, j] = 0.0 if c > tau else c  # -1 rows: every column is a negative here
    np.testing.assert_allclose(out, 64.0 * want, rtol=0, atol=1e-9)
    assert (cos[labels < 0] > tau).any() and (out == 0).any()


@pytest.mark.parametrize("opts", [{}, {"margin": 4.0}, {"margin": 4.0, "feature_scale": True},
                                  {"margin": 2.0, "anneal_base": 1000.0}])
def test_sphereface(opts):
    m = opts.get("margin", 1.35)
    cos, labels, norms = sample(6, special=[-0.99, -0.8, -0.3, 0.2, 0.9])
    head = build("sphereface", **opts)
    outs = [run(head, cos, labels, norms) for _ in range(3)]  # training mode: the step counts
    for step, out in enumerate(outs, start=1):
        lam = max(5.0, 1000.0 * (1 + 0.12 * step) ** -1.0) if "anneal_base" in opts else 0.0

        def target(c, i):
            return (lam * c + psi_value(m * math.acos(c))) / (1 + lam)

        scale = norms[:, 0:1] if opts.get("feature_scale") else 64.0
        np.testing.assert_allclose(out, reference(cos, labels, target, 1.0) * scale, rtol=0, atol=1e-9)
    assert ((m * np.arccos(cos[np.arange(N), labels]))[labels >= 0] > math.pi).sum() >= 2


# -- adaface ------------------------------------------------------------------------------

def test_adaface_formula_with_ema_statistics():
    eps, m, h, s, alpha = 1e-3, 0.4, 0.333, 64.0, 0.01
    cos, labels, norms = sample(7, special=[0.9995, 0.2, -0.9995])
    norms[0, 0], norms[1, 0], norms[2, 0] = 500.0, 1e-5, 0.5  # clip of the norms, clip of z
    head = build("adaface")
    mu, sigma = 20.0, 100.0
    for step in range(3):
        out = run(head, cos, labels, norms)
        n = np.clip(norms[:, 0], 0.001, 100.0)
        mu = alpha * n.mean() + (1 - alpha) * mu
        sigma = alpha * n.std(ddof=1) + (1 - alpha) * sigma
        z = np.clip(h * (n - mu) / (sigma + eps), -1, 1)

        def target(c, i):
            theta = min(max(math.acos(c) - m * z[i], eps), math.pi - eps)
            return math.cos(theta) - (m + m * z[i])

        clipped = np.clip(cos, -1 + eps, 1 - eps)
        # the statistics are float32 buffers (as the reference's): 1e-6 of 64-scaled logits
        np.testing.assert_allclose(out, reference(clipped, labels, target, s), rtol=0, atol=1e-6)
        check_untouched(out, clipped, labels, s)
    assert head.batch_mean.item() == pytest.approx(mu, rel=1e-6)
    assert head.batch_std.item() == pytest.approx(sigma, rel=1e-6)


def test_adaface_limits_are_arcface_and_cosface():
    """z = -1 is ArcFace(m) (clip at pi - eps aside), z = 0 CosFace(m), h = 0 always CosFace."""
    cos, labels, norms = sample(8)
    head = build("adaface", h=0.0)
    out = run(head, cos, labels, norms)
    cosface = reference(np.clip(cos, -1 + 1e-3, 1 - 1e-3), labels, lambda c, i: c - 0.4, 64.0)
    np.testing.assert_allclose(out, cosface, rtol=0, atol=1e-9)
    low = build("adaface", h=1.0)
    low.eval()
    low.batch_mean.fill_(100.0)
    low.batch_std.fill_(1.0)  # every norm is far below the mean: z = -1
    safe = np.clip(cos, -1 + 1e-3, 1 - 1e-3)
    out = run(low, cos, labels, norms)
    want = reference(safe, labels, lambda c, i: math.cos(min(math.acos(c) + 0.4, math.pi - 1e-3)), 64.0)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-9)


# -- curricularface -----------------------------------------------------------------------

def test_curricularface_target_and_hard_negatives():
    m, s, alpha = 0.5, 64.0, 0.01
    cos, labels, norms = sample(9, special=[-0.95, -0.9, 0.1, 0.3])
    head = build("curricularface")
    t = 0.0
    for step in range(4):
        out = run(head, cos, labels, norms)
        valid = labels >= 0
        t = alpha * cos[np.arange(N), labels][valid].mean() + (1 - alpha) * t

        def target(c, i):
            return arc_value(c, m)

        def other(cj, cy, i):
            return cj * (t + cj) if cj > math.cos(math.acos(cy) + m) else cj

        # t is a float32 buffer (as the reference's): 1e-6 of 64-scaled logits
        np.testing.assert_allclose(out, reference(cos, labels, target, s, other), rtol=0, atol=1e-6)
        check_untouched(out, cos, labels, s)
        cos = np.roll(cos, 1, axis=0)  # a new batch each step
    assert head.t.item() == pytest.approx(t, rel=1e-6)
    hard = [(i, j) for i, y in enumerate(labels) if y >= 0 for j in range(C)
            if j != y and cos[i, j] > math.cos(math.acos(cos[i, y]) + m)]
    assert len(hard) > 5


# -- magface ------------------------------------------------------------------------------

@pytest.mark.parametrize("easy_margin", [True, False])
def test_magface_margin_and_regulariser(easy_margin):
    s, la, ua, lm, um, lg = 64.0, 10.0, 110.0, 0.45, 0.8, 35.0
    cos, labels, norms = sample(10, special=[-0.99, -0.95, -0.3, 0.5, 0.9])
    norms[:, 0] = np.linspace(3.0, 150.0, N)  # below l_a, inside, above u_a
    head = build("magface", easy_margin=easy_margin)
    out = run(head, cos, labels, norms)
    a = np.clip(norms[:, 0], la, ua)
    margin = (um - lm) / (ua - la) * (a - la) + lm

    def target(c, i):
        return arc_value(c, margin[i], easy_margin=easy_margin)

    np.testing.assert_allclose(out, reference(cos, labels, target, s), rtol=0, atol=1e-9)
    check_untouched(out, cos, labels, s)
    terms = head.loss_terms(torch.tensor(norms))
    assert set(terms) == {"magface_g"}
    assert terms["magface_g"].item() == pytest.approx(lg * np.mean(a / ua ** 2 + 1 / a), rel=1e-12)


# -- elasticface --------------------------------------------------------------------------

def draws(seed, n, mean, std, steps):
    """The margins the head must draw: its generator is seeded with head_seed(seed)."""
    from facebone.plugins.heads.elasticface_model import head_seed

    g = torch.Generator().manual_seed(head_seed(seed))
    return [torch.normal(mean, std, (n,), generator=g, dtype=torch.float64).numpy() for _ in range(steps)]


@pytest.mark.parametrize("name, mean", [("elasticface_arc", 0.5), ("elasticface_cos", 0.35)])
def test_elasticface_per_sample_margins(name, mean):
    cos, labels, norms = sample(11)
    head = build(name, seed=7)
    for margins in draws(7, N, mean, 0.05, 3):
        out = run(head, cos, labels, norms)
        if name == "elasticface_arc":
            want = reference(cos, labels, lambda c, i: math.cos(math.acos(c) + margins[i]), 64.0)
        else:
            want = reference(cos, labels, lambda c, i: c - margins[i], 64.0)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-9)
        check_untouched(out, cos, labels, 64.0)
    head.eval()  # eval mode: the mean margin, nothing drawn
    state = head.generator_state.clone()
    out = run(head, cos, labels, norms)
    fixed = (lambda c, i: math.cos(math.acos(c) + mean)) if name == "elasticface_arc" else (lambda c, i: c - mean)
    np.testing.assert_allclose(out, reference(cos, labels, fixed, 64.0), rtol=0, atol=1e-9)
    assert torch.equal(state, head.generator_state)


def test_elasticface_margins_follow_the_normal_law_and_the_seed():
    head = build("elasticface_cos", seed=3, margin=0.35, sigma=0.05)
    labels = torch.zeros(20000, dtype=torch.long)
    cos = torch.full((20000, 1), 0.5, dtype=torch.float64)
    with torch.no_grad():
        margins = 0.5 - head(cos, labels, None)[:, 0].numpy() / 64.0
    assert margins.mean() == pytest.approx(0.35, abs=0.002) and margins.std() == pytest.approx(0.05, rel=0.03)
    again = build("elasticface_cos", seed=3)(cos[:50], labels[:50], None)
    other = build("elasticface_cos", seed=4)(cos[:50], labels[:50], None)
    first = build("elasticface_cos", seed=3)(cos[:50], labels[:50], None)
    assert torch.equal(again, first) and not torch.equal(again, other)


# -- every head in float32 ----------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTIN)
def test_float32_input_gives_float32_logits_close_to_float64(name):
    cos, labels, norms = sample(12)
    h64, h32 = build(name), build(name)
    with torch.no_grad():
        out64 = h64(torch.tensor(cos), torch.tensor(labels), torch.tensor(norms))
        out32 = h32(torch.tensor(cos).float(), torch.tensor(labels), torch.tensor(norms).float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=1e-5, atol=2e-4)
