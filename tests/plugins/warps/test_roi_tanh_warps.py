"""The RoI Tanh warp modules, built through the registry."""
from __future__ import annotations

import math

import pytest
import torch

from facebone.plugin.options import build_options
from facebone.plugins.warps import mapping as M
from facebone.plugins.warps import roi_tanh
from facebone.plugin.registry import Registry

SPACES = ("roi_tanh", "roi_tanh_polar", "roi_tanh_circular")


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = Registry("warp")
    roi_tanh.facebone_warps(reg)
    return reg


def build(registry: Registry, name: str, image_size: int = 112, **table):  # type: ignore[no-untyped-def]
    comp = registry.get(name)
    options, problems = build_options(comp.options, table, f"[warp] {name}")
    assert not problems, problems
    return comp.factory(options, image_size=image_size)


def smooth_images(n: int, size: int) -> torch.Tensor:
    pc = M.pixel_centres((size, size))
    x, y = pc[..., 0] / size, pc[..., 1] / size
    chans = [torch.sin(2 * math.pi * x) * torch.cos(1.4 * math.pi * y),
             torch.exp(-((x - 0.4) ** 2 + (y - 0.6) ** 2) / 0.1),
             0.5 * torch.cos(3 * x + 2 * y)]
    return torch.stack(chans)[None].repeat(n, 1, 1, 1)


def test_registered_names_and_discovery(registry: Registry) -> None:
    assert registry.names() == sorted(SPACES)
    from facebone.plugin.discovery import load_plugins

    plugins = load_plugins()
    warps = plugins.registry("warp")
    for name in SPACES + ("cartesian",):
        assert name in warps


@pytest.mark.parametrize("name", SPACES)
def test_image_round_trip_inside_roi(registry: Registry, name: str) -> None:
    """Warp then restore a smooth 112x112 image: MAE <= 5e-3 inside the RoI (fixed box and per-sample RoIs)."""
    warp = build(registry, name).eval()
    images = smooth_images(2, 112)
    pc = M.pixel_centres((112, 112))
    for rois in (None, torch.tensor([[20.0, 14.0, 92.0, 100.0, 0.3], [11.2, 11.2, 100.8, 100.8, -0.5]])):
        warped = warp(images, rois)
        assert warped.shape == (2, 3, 112, 112)
        back = warp.restore(warped, rois)
        r = M.as_rois(rois, 2, (112, 112), 0.8)
        local = M.source_to_local(pc.expand(2, -1, -1, -1), r)
        half = ((r[:, 2:4] - r[:, 0:2]) / 2)[:, None, None, :]
        inside = (local.abs() < half).all(-1)  # (N, H, W)
        err = (back - images).abs().mean(1)
        assert err[inside].mean().item() <= 5e-3
        # and the round trip is not trivially small because nothing happened
        assert (warped - images).abs().mean().item() > 0.05


def test_polar_restore_has_no_centre_artefact(registry: Registry) -> None:
    """Restore interpolates through the centre (few radius columns, so pixels fall there)."""
    warp = build(registry, "roi_tanh_polar", output_width=16).eval()
    images = smooth_images(1, 112)
    err = (warp.restore(warp(images)) - images).abs().mean(1)[0]
    dist = (M.pixel_centres((112, 112)) - 56).norm(dim=-1)
    centre, ring = err[dist < 4].max().item(), err[(dist > 6) & (dist < 12)].max().item()
    assert centre <= 5e-3 and centre <= 1.5 * ring


@pytest.mark.parametrize("keep", [True, False])
def test_polar_seam(registry: Registry, keep: bool) -> None:
    """Rows 0 and H-1 of a rotationally smooth image agree as closely as neighbouring rows do."""
    warp = build(registry, "roi_tanh_polar", keep_aspect_ratio=keep).eval()
    pc = M.pixel_centres((112, 112)) - 56
    r = pc.norm(dim=-1) / 112
    theta = torch.atan2(pc[..., 1], pc[..., 0])
    img = torch.stack([torch.cos(6 * r) * (1 + 0.3 * torch.cos(theta - 0.7)),
                       r * (1 + 0.2 * torch.sin(2 * theta + 0.4)), torch.sin(3 * r)])[None]
    out = warp(img)
    neighbour = (out[:, :, 1:] - out[:, :, :-1]).abs().mean(dim=(0, 1, 3))
    seam = (out[:, :, 0] - out[:, :, -1]).abs().mean().item()
    assert seam <= 1.5 * neighbour.median().item()
    assert neighbour.median().item() > 1e-4  # the image does vary with angle


def test_circular_outside_disc_follows_the_padding(registry: Registry) -> None:
    """Outside the unit disc the original samples ~10 RoI radii away: black under zeros, the
    image's edge under border."""
    warp = build(registry, "roi_tanh_circular", image_size=32).eval()
    out = warp(torch.full((1, 3, 32, 32), 0.5), None)
    assert out[0, :, 0, 0].tolist() == [-1.0] * 3  # corner: outside the disc, black
    assert out[0, :, 16, 16].min() > 0.49
    ramp = M.pixel_centres((32, 32))[..., 0][None, None].repeat(1, 3, 1, 1) / 16 - 1  # x ramp in [-1, 1]
    border = build(registry, "roi_tanh_circular", image_size=32, padding_mode="border").eval()
    out = border(ramp)
    assert out[0, 0, 0, 0].item() == pytest.approx(ramp[0, 0, 0, 0].item(), abs=1e-6)  # top-left corner: left edge
    assert out[0, 0, 16, -1].item() == pytest.approx(ramp[0, 0, 0, -1].item(), abs=1e-6)  # right: right edge


@pytest.mark.parametrize("name", SPACES)
def test_forward_samples_where_the_mapping_says(registry: Registry, name: str) -> None:
    """A linear ramp image (value = source x, y) warps to the mapping's source coordinates."""
    warp = build(registry, name, image_size=64, output_height=20, output_width=16, padding_mode="border").eval()
    assert warp.output_size == (20, 16)
    pc = M.pixel_centres((64, 64))
    ramp = pc.permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    rois = torch.tensor([[16.0, 12.0, 48.0, 50.0, 0.2], [20.0, 20.0, 44.0, 44.0, -1.0]])
    out = warp(ramp, rois).permute(0, 2, 3, 1)
    want = M.warped_to_source(name, M.pixel_centres((20, 16)).expand(2, -1, -1, -1), rois, (20, 16))
    ok = ((want > 0.5) & (want < 63.5)).all(-1)  # bilinear is exact for a ramp inside the image
    if name == "roi_tanh_circular":
        ok &= warp.disc_mask[0, 0].bool()
    assert ok.float().mean() > 0.3
    assert (out - want).abs()[ok].max().item() < 1e-3


@pytest.mark.parametrize("name", SPACES)
def test_gradients_reach_the_input(registry: Registry, name: str) -> None:
    warp = build(registry, name, image_size=32).train()
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    rois = torch.tensor([[4.0, 4.0, 28.0, 28.0], [6.0, 2.0, 30.0, 26.0]])
    warp(images, rois).square().sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    assert images.grad.abs().sum() > 0
    warped = torch.rand(2, 3, 32, 32, requires_grad=True)
    warp.restore(warped, rois).sum().backward()
    assert warped.grad.abs().sum() > 0


def test_jitter_only_in_training(registry: Registry) -> None:
    warp = build(registry, "roi_tanh_polar", image_size=32, jitter_shift=0.1, jitter_scale=0.1, jitter_angle=10.0)
    images = smooth_images(4, 32)
    warp.eval()
    a, b = warp(images), warp(images)
    assert torch.equal(a, b) and torch.allclose(a[0], a[3])
    warp.train()
    torch.manual_seed(0)
    c = warp(images)
    assert not torch.allclose(c[0], c[3], atol=1e-3)  # one RoI drawn per sample
    still = build(registry, "roi_tanh_polar", image_size=32).train()
    assert torch.equal(still(images), a)  # jitter is off by default


def test_jitter_ranges() -> None:
    from facebone.plugins.warps.modules import jitter_rois

    rois = torch.tensor([[10.0, 10.0, 50.0, 30.0, 0.0]]).repeat(2000, 1)
    out = jitter_rois(rois, shift=0.1, scale=0.2, angle_deg=15.0, generator=torch.Generator().manual_seed(0))
    centre = (out[:, 0:2] + out[:, 2:4]) / 2 - torch.tensor([30.0, 20.0])
    ratio = (out[:, 2:4] - out[:, 0:2]) / torch.tensor([40.0, 20.0])
    assert centre[:, 0].abs().max() <= 4.0 + 1e-4 and centre[:, 1].abs().max() <= 2.0 + 1e-4
    assert centre[:, 0].abs().max() > 3.5
    assert ratio.min() >= 1 / 1.2 - 1e-5 and ratio.max() <= 1.2 + 1e-5
    assert torch.allclose(ratio[:, 0], ratio[:, 1])  # aspect ratio kept
    assert out[:, 4].abs().max() <= math.radians(15) + 1e-6 and out[:, 4].abs().max() > math.radians(14)


def test_options_validation(registry: Registry) -> None:
    comp = registry.get("roi_tanh_polar")
    _, problems = build_options(comp.options, {"roi_ratio": 1.5}, "exp.toml [warp]")
    assert len(problems) == 1 and "roi_ratio" in problems[0] and "exp.toml [warp]" in problems[0]
    _, problems = build_options(comp.options, {"padding_mode": "circular"}, "exp.toml [warp]")
    assert problems and "padding_mode" in problems[0]
    _, problems = build_options(registry.get("roi_tanh").options, {"keep_aspect_ratio": True}, "[warp]")
    assert problems and "unknown key 'keep_aspect_ratio'" in problems[0]


def test_low_precision_input(registry: Registry) -> None:
    warp = build(registry, "roi_tanh_polar", image_size=32).eval()
    images = smooth_images(2, 32)
    out = warp(images.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert (out.float() - warp(images)).abs().max() < 2e-2
