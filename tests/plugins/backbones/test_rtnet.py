"""rtnet50: parameter count, contract, warp check, space conversions, and a few training steps."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facebone.plugin.options import build_options
from facebone.plugins.backbones import rtnet
from facebone.plugins.backbones.rtnet_model import CartesianHalf, PolarConv3x3, polar_to_tanh_points, tanh_to_polar_grid
from facebone.plugins.warps import mapping as M
from facebone.plugin.registry import Registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = Registry("backbone")
    rtnet.facebone_backbones(reg)
    return reg


def build(registry: Registry, image_size: int = 112, embedding_size: int = 512, **table):  # type: ignore[no-untyped-def]
    comp = registry.get("rtnet50")
    options, problems = build_options(comp.options, table, "[backbone]")
    assert not problems
    return comp.factory(options, image_size=image_size, embedding_size=embedding_size)


def test_parameter_count_and_contract(registry: Registry) -> None:
    model = build(registry)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 34.6e6) < 0.1e6, count  # the figure for 112x112, 512-D
    assert model.embedding_size == 512 and model.input_size == (112, 112)
    assert model.final_size == 4  # flatten 4x4x2048 as iResNet
    assert not any("to_tanh" in k or "to_polar" in k for k in model.state_dict())  # grids are not weights
    assert model.hybrid_blocks() == 10  # every block but the first of layers 2-4, as the original
    assert [sum(b.hybrid.tanh_space for b in stage) for stage in model.stages] == [0, 3, 5, 2]
    assert model.features.weight.requires_grad is False and torch.equal(model.features.weight, torch.ones(512))


def test_discovered_through_entry_points() -> None:
    from facebone.plugin.discovery import load_plugins

    assert "rtnet50" in load_plugins().registry("backbone")


def test_check_refuses_other_warps(registry: Registry) -> None:
    check = registry.get("rtnet50").check
    assert check is not None
    opts = rtnet.RTNetOptions()
    good = {"data": {"image_size": 112}, "warp": {"type": "roi_tanh_polar", "keep_aspect_ratio": True}}
    assert check(opts, good) == []
    assert check(opts, {"warp": {"type": "facebone:roi_tanh_polar"}}) == []
    for warp in ({"type": "cartesian"}, {"type": "roi_tanh_circular", "keep_aspect_ratio": True}, None):
        problems = check(opts, {"warp": warp} if warp else {})
        assert len(problems) == 1 and problems[0].startswith("[warp] type") and "roi_tanh_polar" in problems[0]
    problems = check(opts, {"warp": {"type": "roi_tanh_polar", "keep_aspect_ratio": False}})
    assert problems == ["[warp] keep_aspect_ratio: backbone 'rtnet50' needs keep_aspect_ratio = true"]
    problems = check(opts, {"data": {"image_size": 112}, "warp": {"type": "roi_tanh_polar", "output_width": 64}})
    assert len(problems) == 1 and "[warp] output_width" in problems[0]


def test_polar_conv_wraps_angles_and_replicates_radii() -> None:
    conv = PolarConv3x3(1, 1)
    with torch.no_grad():
        conv.conv.weight.zero_()
        conv.conv.weight[0, 0, 0, 1] = 1.0  # take the row above (previous angle)
    x = torch.arange(20.0).reshape(1, 1, 5, 4)
    out = conv(x)
    assert torch.equal(out[0, 0, 0], x[0, 0, 4]) and torch.equal(out[0, 0, 1:], x[0, 0, :4])
    with torch.no_grad():
        conv.conv.weight.zero_()
        conv.conv.weight[0, 0, 1, 0] = 1.0  # take the column to the left (smaller radius)
    out = conv(x)
    assert torch.equal(out[0, 0, :, 0], x[0, 0, :, 0]) and torch.equal(out[0, 0, :, 1:], x[0, 0, :, :3])


def test_tanh_space_round_trip_is_close_to_identity() -> None:
    """With an identity kernel and BN the polar -> RoI Tanh -> polar detour returns a smooth map."""
    hw = (28, 28)
    half = CartesianHalf(1, 1, 1, tanh_space=True).eval()
    with torch.no_grad():
        half.conv.weight.zero_()
        half.conv.weight[0, 0, 1, 1] = 1.0
    xy = M.pixel_centres(hw) - 0.5  # row i, column j
    theta, radius = xy[..., 1] * 2 * math.pi / hw[0], xy[..., 0] / hw[1]
    polar = (radius * torch.cos(theta) + 0.5 * radius ** 2 * torch.sin(theta))[None, None]  # smooth in the plane
    grids = (polar_to_tanh_points(hw), tanh_to_polar_grid(hw))
    out = half(polar, grids)
    err = (out - polar).abs()[0, 0, :, : hw[1] * 3 // 4]  # the outer radii are compressed in tanh space
    assert err.mean().item() < 0.02
    assert (torch.roll(polar, 7, dims=2) - polar).abs().mean() > 0.1  # a wrong angle would show


def test_rois_reach_the_backbone_through_face_model(registry: Registry) -> None:
    """FaceModel passes the RoIs the warp used: the fixed box (None) without RoIs, the given
    ones otherwise; a non-square RoI changes the resampling grids, so the output."""
    from facebone.model.face_model import FaceModel
    from facebone.plugins.warps.roi_tanh import RoITanhRadialOptions, build_roi_tanh_polar

    torch.manual_seed(0)
    warp = build_roi_tanh_polar(RoITanhRadialOptions(), image_size=112).eval()
    backbone = build(registry).eval()
    for block in backbone.stages.modules():  # residual branches are zero at init: open them
        if hasattr(block, "expand"):
            torch.nn.init.ones_(block.expand[1].weight)
    seen = []
    backbone.register_forward_pre_hook(lambda mod, args: seen.append(args[1] if len(args) > 1 else "no rois"))
    model = FaceModel(warp, backbone).eval()
    images = torch.rand(2, 3, 112, 112) * 2 - 1
    rect = torch.tensor([[14.0, 9.0, 98.0, 104.0], [5.0, 20.0, 107.0, 90.0]])
    with torch.no_grad():
        fixed = model(images)
        with_rect = model(images, rect)
        rect_ignored = backbone(warp(images, rect))  # what the backbone gives without the RoIs
    assert seen[0] is None and torch.equal(seen[1][:, :4], rect)
    scale = fixed.abs().max()
    assert (with_rect - rect_ignored).abs().max() > 1e-3 * scale
    square = torch.tensor([[11.2, 11.2, 100.8, 100.8]]).repeat(2, 1)
    with torch.no_grad():
        assert torch.equal(fixed, backbone(warp(images)))
        assert (model(images, square) - fixed).abs().max() < 1e-5 * scale  # a square RoI: the cached grids


def test_training_steps_decrease_the_loss(registry: Registry) -> None:
    """A few FaceModel steps on polar-warped inputs with a cosine-softmax classifier lower the
    loss, alternating batches without RoIs (the fixed box) and with per-sample RoIs; the
    backbone gets what the warp used, and jittered RoIs when the warp jitters."""
    from facebone.model.face_model import FaceModel
    from facebone.plugins.warps.roi_tanh import RoITanhRadialOptions, build_roi_tanh_polar

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine is shared: one thread is faster than contended two
    warp = build_roi_tanh_polar(RoITanhRadialOptions(), image_size=64)  # 64 px keeps it fast on a CPU
    backbone = build(registry, image_size=64, embedding_size=64)
    seen = []
    backbone.register_forward_pre_hook(lambda mod, args: seen.append(args[1]))
    model = FaceModel(warp, backbone).train()
    classes = 3
    weight = torch.nn.Parameter(torch.randn(classes, 64))
    images = torch.rand(4, 3, 64, 64) * 2 - 1
    labels = torch.tensor([0, 1, 2, 0])
    optim = torch.optim.SGD(list(model.parameters()) + [weight], lr=0.05, momentum=0.9)
    losses = []
    rois = torch.tensor([[8.0, 6.0, 56.0, 60.0], [6.0, 6.0, 58.0, 58.0], [10.0, 4.0, 54.0, 58.0], [8.0, 8.0, 56.0, 56.0]])
    for step in range(6):
        given = rois if step % 2 else None
        emb = model(images, given)
        assert (seen[-1] is None) if given is None else torch.equal(seen[-1][:, :4], rois)
        logits = 16.0 * F.normalize(emb) @ F.normalize(weight).t()
        loss = F.cross_entropy(logits, labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.7 * losses[0], losses

    jitter = RoITanhRadialOptions(jitter_shift=0.05, jitter_scale=0.05, jitter_angle=5.0)
    model.warp = build_roi_tanh_polar(jitter, image_size=64).train()
    for given in (None, rois):
        model(images, given).sum().backward()
        used = seen[-1]
        assert used.shape == (4, 5)  # jittered per sample, passed on
        centre = (used[:, :2] + used[:, 2:4]) / 2
        expected = 32.0 if given is None else (given[:, :2] + given[:, 2:]) / 2
        assert ((centre - expected).abs() <= 0.05 * 60 + 1e-4).all() and not torch.allclose(centre, centre[:1])
    torch.set_num_threads(threads)
