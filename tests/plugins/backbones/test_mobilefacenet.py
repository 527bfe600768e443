"""MobileFaceNet: InsightFace mbf key layout, parameter counts, strict loading, GDC head."""
from __future__ import annotations

import pytest
import torch

from facebone.errors import ConfigError
from facebone.plugins.backbones.mobilefacenet import MobileFaceNetOptions, _factory


def build(name: str = "mobilefacenet", **runtime) -> torch.nn.Module:  # type: ignore[no-untyped-def]
    runtime.setdefault("embedding_size", 512)
    runtime.setdefault("image_size", 112)
    return _factory(name)(MobileFaceNetOptions(), **runtime)


def unit(prefix: str, cin: int, cout: int, k: int, groups: int = 1, prelu: bool = True) -> dict:  # type: ignore[type-arg]
    keys = {f"{prefix}.layers.0.weight": (cout, cin // groups, k, k)}
    for s in ("weight", "bias", "running_mean", "running_var"):
        keys[f"{prefix}.layers.1.{s}"] = (cout,)
    keys[f"{prefix}.layers.1.num_batches_tracked"] = ()
    if prelu:
        keys[f"{prefix}.layers.2.weight"] = (cout,)
    return keys


def bottleneck(prefix: str, cin: int, cout: int, hidden: int) -> dict:  # type: ignore[type-arg]
    return {**unit(f"{prefix}.layers.0", cin, hidden, 1), **unit(f"{prefix}.layers.1", hidden, hidden, 3, hidden),
            **unit(f"{prefix}.layers.2", hidden, cout, 1, prelu=False)}


def mbf_layout(blocks=(1, 4, 6, 2), scale=2, emb=512) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """arcface_torch's mbf state dict, written from its module description."""
    c1, c2 = 64 * scale, 128 * scale
    keys = unit("layers.0", 3, c1, 3)
    if blocks[0] == 1:
        keys.update(unit("layers.1", c1, c1, 3, groups=64))
    else:
        for b in range(blocks[0]):
            keys.update(bottleneck(f"layers.1.layers.{b}", c1, c1, 128))
    plan = [(2, c1, c1, 128, None), (3, c1, c1, 128, blocks[1]), (4, c1, c2, 256, None),
            (5, c2, c2, 256, blocks[2]), (6, c2, c2, 512, None), (7, c2, c2, 256, blocks[3])]
    for idx, cin, cout, hidden, n in plan:
        if n is None:
            keys.update(bottleneck(f"layers.{idx}", cin, cout, hidden))
        else:
            for b in range(n):
                keys.update(bottleneck(f"layers.{idx}.layers.{b}", cin, cout, hidden))
    keys.update(unit("conv_sep", c2, 512, 1))
    keys.update(unit("features.layers.0", 512, 512, 7, groups=512, prelu=False))
    keys["features.layers.2.weight"] = (emb, 512)
    for s in ("weight", "bias", "running_mean", "running_var"):
        keys[f"features.layers.3.{s}"] = (emb,)
    keys["features.layers.3.num_batches_tracked"] = ()
    return keys


@pytest.mark.parametrize("name,blocks,scale", [("mobilefacenet", (1, 4, 6, 2), 2),
                                               ("mobilefacenet_large", (2, 8, 12, 4), 4)])
def test_state_dict_matches_insightface_mbf(name: str, blocks, scale) -> None:  # type: ignore[no-untyped-def]
    got = {k: tuple(v.shape) for k, v in build(name).state_dict().items()}
    assert got == mbf_layout(blocks, scale)


def test_parameter_counts() -> None:
    n = sum(p.numel() for p in build().parameters())
    assert 1.95e6 < n < 2.1e6  # "about 2.0M" (InsightFace's mbf)
    assert n == 2_059_520
    large = sum(p.numel() for p in build("mobilefacenet_large").parameters())
    assert large == 6_314_880


def test_insightface_state_dict_loads_strict_and_gives_same_output() -> None:
    gen = torch.Generator().manual_seed(1)
    sd = {}
    for k, shape in mbf_layout().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(3)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=gen) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=gen) * 0.1
    a, b = build().eval(), build().eval()
    a.load_state_dict(sd, strict=True)
    b.load_state_dict(sd, strict=True)
    x = torch.rand(2, 3, 112, 112, generator=gen) * 2 - 1
    with torch.no_grad():
        ya, yb = a(x), b(x)
        torch.testing.assert_close(ya, yb)
        # GDC: the embedding is BN1d(W @ depthwise7x7(conv_sep map)) -- recompute the head by hand
        feat = x
        for layer in a.layers:
            feat = layer(feat)
        feat = a.conv_sep(feat)
        dw = torch.nn.functional.conv2d(feat, sd["features.layers.0.layers.0.weight"], groups=512).flatten(1)
        dw = torch.nn.functional.batch_norm(dw, sd["features.layers.0.layers.1.running_mean"],
                                            sd["features.layers.0.layers.1.running_var"],
                                            sd["features.layers.0.layers.1.weight"], sd["features.layers.0.layers.1.bias"])
        emb = torch.nn.functional.batch_norm(dw @ sd["features.layers.2.weight"].T,
                                             sd["features.layers.3.running_mean"], sd["features.layers.3.running_var"],
                                             sd["features.layers.3.weight"], sd["features.layers.3.bias"])
        torch.testing.assert_close(ya, emb, rtol=1e-4, atol=1e-4)


def test_other_image_sizes_and_bad_size() -> None:
    model = build(image_size=128, embedding_size=256)
    assert model.features.layers[0].layers[0].kernel_size == (8, 8)
    assert model(torch.randn(2, 3, 128, 128)).shape == (2, 256)
    with pytest.raises(ConfigError, match="image_size"):
        build(image_size=120)
