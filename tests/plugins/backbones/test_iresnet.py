"""iResNet: InsightFace key layout, parameter counts, GWP kernel, functional reference forward."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facebone.errors import ConfigError
from facebone.plugins.backbones.iresnet import IResNetOptions, build_iresnet, check_image_size

# Blocks per stage of the published iResNet architectures (ArcFace / InsightFace model zoo).
PUBLISHED_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 200: (6, 26, 60, 6)}


def build(depth: int, **opts) -> torch.nn.Module:  # type: ignore[no-untyped-def]
    size = opts.pop("image_size", 112)
    emb = opts.pop("embedding_size", 512)
    return build_iresnet(depth, IResNetOptions(**opts), embedding_size=emb, image_size=size)


def bn_keys(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def insightface_layout(layers, emb=512, fc_in=512 * 7 * 7) -> dict[str, tuple[int, ...]]:  # type: ignore[no-untyped-def]
    """The state-dict keys and shapes of InsightFace's IResNet, written from its description."""
    keys = {"conv1.weight": (64, 3, 3, 3), **bn_keys("bn1", 64), "prelu.weight": (64,)}
    cin = 64
    for s, n in enumerate(layers):
        c = (64, 128, 256, 512)[s]
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            first_in = cin if b == 0 else c
            keys.update(bn_keys(f"{p}.bn1", first_in))
            keys[f"{p}.conv1.weight"] = (c, first_in, 3, 3)
            keys.update(bn_keys(f"{p}.bn2", c))
            keys[f"{p}.prelu.weight"] = (c,)
            keys[f"{p}.conv2.weight"] = (c, c, 3, 3)
            keys.update(bn_keys(f"{p}.bn3", c))
            if b == 0:  # every stage starts with stride 2, hence a projection shortcut
                keys[f"{p}.downsample.0.weight"] = (c, first_in, 1, 1)
                keys.update(bn_keys(f"{p}.downsample.1", c))
        cin = c
    keys.update(bn_keys("bn2", 512))
    keys["fc.weight"] = (emb, fc_in)
    keys["fc.bias"] = (emb,)
    keys.update(bn_keys("features", emb))
    return keys


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("depth", [18, 50, 100])
def test_flatten_state_dict_matches_insightface_layout(depth: int) -> None:
    model = build(depth)
    got = shapes(model)
    want = insightface_layout(PUBLISHED_LAYERS[depth])
    assert sorted(got) == sorted(want)
    assert got == want
    assert list(got) == list(want)  # same order too: InsightFace registers modules in this order
    ones = {k: torch.full(s, 0.5) if s else torch.tensor(3) for k, s in want.items()}
    model.load_state_dict(ones, strict=True)
    assert float(model.layer3[0].conv1.weight.detach()[0, 0, 0, 0]) == 0.5


@pytest.mark.parametrize("pooling", ["gap", "gwp"])
def test_pooled_variants_differ_only_in_fc(pooling: str) -> None:
    flat, pooled = shapes(build(50)), shapes(build(50, pooling=pooling))
    assert set(flat) == set(pooled)
    differ = {k for k in flat if flat[k] != pooled[k]}
    assert differ == {"fc.weight"}
    assert pooled["fc.weight"] == (512, 512)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts() -> None:
    r50, r100 = n_params(build(50)), n_params(build(100))
    assert round(r50 / 1e6, 2) == 43.59
    assert round(r100 / 1e6, 2) == 65.16
    saved = 512 * 512 * 7 * 7 - 512 * 512  # only the fc input shrinks from 512*7*7 to 512
    assert n_params(build(50, pooling="gap")) == r50 - saved
    assert n_params(build(50, pooling="gwp")) == r50 - saved
    assert abs(saved / 1e6 - 12.6) < 0.05


def paper_gwp_kernel() -> torch.Tensor:
    """The GWP paper's 7x7 Gaussian (sigma 3) centred on the map, normalised to sum 1."""
    w = torch.empty(7, 7, dtype=torch.float64)
    for i in range(7):
        for j in range(7):
            w[i, j] = math.exp(-((i - 3) ** 2 + (j - 3) ** 2) / (2 * 3.0 ** 2))
    return w / w.sum()


def test_gwp_kernel_is_the_papers() -> None:
    model = build(18, pooling="gwp")
    kernel = model.pool.weight
    assert kernel.shape == (7, 7)
    torch.testing.assert_close(kernel.double(), paper_gwp_kernel(), rtol=0, atol=1e-7)
    assert "pool.weight" not in model.state_dict()  # derived from the map size, not saved


def test_gwp_pool_is_the_papers_weighted_average() -> None:
    """The paper's code multiplies the map by the (sum 1) Gaussian, then averages (AdaptiveAvgPool2d):
    the effective weights are gaussian / 49 at 7x7, not the weighted sum."""
    model = build(18, pooling="gwp").eval()
    x = torch.randn(3, 512, 7, 7)
    w = paper_gwp_kernel().float()
    expected = torch.nn.AdaptiveAvgPool2d(1)(x * w).flatten(1)
    torch.testing.assert_close(model.pool(x), expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(model.pool(x), (x * w).sum(dim=(2, 3)) / 49, rtol=1e-5, atol=1e-7)
    ones = model.pool(torch.ones(1, 1, 7, 7))
    torch.testing.assert_close(ones, torch.full((1, 1), 1 / 49), rtol=1e-6, atol=0)


def test_gap_pool_is_adaptive_avg_pool_bit_for_bit() -> None:
    model = build(18, pooling="gap").eval()
    x = torch.randn(3, 512, 7, 7)
    assert torch.equal(model.pool(x), torch.nn.AdaptiveAvgPool2d(1)(x).flatten(1))


def test_gwp_kernel_follows_dtype_and_device() -> None:
    model = build(18, pooling="gwp", width=8).to(torch.float64)
    assert model.pool.weight.dtype == torch.float64
    out = model.eval()(torch.randn(2, 3, 112, 112, dtype=torch.float64))
    assert out.dtype == torch.float64
    device = "cuda" if torch.cuda.is_available() else "meta"
    assert model.to(device).pool.weight.device.type == device


def test_gwp_other_map_sizes_scale_sigma() -> None:
    model = build(18, pooling="gwp", width=8, image_size=128)
    k = model.pool.weight.double()
    assert k.shape == (8, 8)
    sigma = 3 * 8 / 7
    r = torch.arange(8, dtype=torch.float64) - 3.5
    want = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    torch.testing.assert_close(k, want / want.sum(), rtol=0, atol=1e-7)
    assert model(torch.randn(2, 3, 128, 128)).shape == (2, 512)


def test_image_size_must_be_multiple_of_16() -> None:
    with pytest.raises(ConfigError, match="image_size"):
        build(18, image_size=100)
    assert check_image_size(IResNetOptions(), {"data": {"image_size": 100}})
    assert check_image_size(IResNetOptions(), {"data": {"image_size": 112}}) == []


def test_bad_options_rejected() -> None:
    with pytest.raises(ValueError, match="dropout"):
        IResNetOptions(dropout=1.5)
    with pytest.raises(ValueError, match="width"):
        IResNetOptions(width=0)


def test_stem7x7_and_width() -> None:
    model = build(18, stem7x7=True, width=16, embedding_size=128)
    sd = shapes(model)
    assert sd["conv1.weight"] == (16, 3, 7, 7)
    assert sd["layer4.0.conv2.weight"] == (128, 128, 3, 3)
    assert sd["fc.weight"] == (128, 128 * 49)
    assert model.embedding_size == 128 and model.input_size == (112, 112)
    assert not model.features.weight.requires_grad  # fixed to 1, as in InsightFace
    out = model(torch.randn(2, 3, 112, 112))
    out.sum().backward()
    assert out.shape == (2, 128)
    assert model.conv1.weight.grad is not None and model.conv1.weight.grad.abs().sum() > 0


def reference_forward(sd: dict[str, torch.Tensor], layers, x: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Eval-mode iResNet written with torch.nn.functional straight from the state dict."""
    def bn(t, p):  # type: ignore[no-untyped-def]
        return F.batch_norm(t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"],
                            sd[f"{p}.bias"], training=False, eps=1e-5)

    x = F.prelu(bn(F.conv2d(x, sd["conv1.weight"], padding=1), "bn1"), sd["prelu.weight"])
    for s, n in enumerate(layers):
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            stride = 2 if b == 0 else 1
            y = F.conv2d(bn(x, f"{p}.bn1"), sd[f"{p}.conv1.weight"], padding=1)
            y = F.prelu(bn(y, f"{p}.bn2"), sd[f"{p}.prelu.weight"])
            y = bn(F.conv2d(y, sd[f"{p}.conv2.weight"], stride=stride, padding=1), f"{p}.bn3")
            short = x if b else bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=2), f"{p}.downsample.1")
            x = y + short
    x = torch.flatten(bn(x, "bn2"), 1)
    return bn(F.linear(x, sd["fc.weight"], sd["fc.bias"]), "features")


def test_insightface_state_dict_loads_strict_and_gives_same_output() -> None:
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in insightface_layout(PUBLISHED_LAYERS[18]).items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=gen) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=gen) * (0.05 if "conv" in k or "fc" in k else 0.5)
    model = build(18)
    model.load_state_dict(sd, strict=True)
    model.eval()
    x = torch.rand(2, 3, 112, 112, generator=gen) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(sd, PUBLISHED_LAYERS[18], x), rtol=1e-4, atol=1e-4)


def test_experiments_that_say_the_gwp_paper_use_its_stem() -> None:
    """An experiment that names the GWP paper trains the paper's net: GWP pooling and the 7x7 stem."""
    from pathlib import Path

    from facebone.experiment.config import load_experiment

    root = Path(__file__).resolve().parents[3] / "experiments"
    claiming = [p for p in sorted(root.glob("*.toml")) if "gwp paper" in p.read_text().lower()]
    assert "gwp_r100_cosface.toml" in [p.name for p in claiming]
    for path in claiming:
        exp = load_experiment(path, check_paths=False)
        assert exp.backbone.options.pooling == "gwp" and exp.backbone.options.stem7x7 is True, path.name
        assert exp.data.image_size == 112  # the paper's 7x7 final map
