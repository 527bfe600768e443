"""A warp in front of a backbone exports to ONNX (opset 17, grid_sample) and matches PyTorch."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from facebone.plugin.options import build_options  # noqa: E402

WARPS = ("cartesian", "roi_tanh", "roi_tanh_polar", "roi_tanh_circular")


class WarpThenBackbone(nn.Module):
    def __init__(self, warp: nn.Module, backbone: nn.Module, with_rois: bool):
        super().__init__()
        self.warp, self.backbone, self.with_rois = warp, backbone, with_rois

    def forward(self, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.warp(images, rois if self.with_rois else None))


def export_and_run(model: nn.Module, inputs: tuple[torch.Tensor, ...]):  # type: ignore[no-untyped-def]
    """Export with torch.onnx (TorchScript exporter, opset 17) and run with onnxruntime."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, buf, opset_version=17, dynamo=False,
                          input_names=["images", "rois"], output_names=["out"])
    onnx.checker.check_model(onnx.load_from_string(buf.getvalue()))
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)[0]


def build_warp(name: str, image_size: int) -> nn.Module:
    from facebone.plugin.discovery import load_plugins

    comp = load_plugins().registry("warp").get(name)
    options, problems = build_options(comp.options, {}, "[warp]")
    assert not problems
    return comp.factory(options, image_size=image_size).eval()


def tiny_backbone() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.PReLU(8), nn.Flatten(),
                         nn.LazyLinear(16)).eval()


@pytest.mark.parametrize("name", WARPS)
@pytest.mark.parametrize("with_rois", [False, True])
def test_warp_in_front_of_backbone_matches(name: str, with_rois: bool) -> None:
    warp = build_warp(name, 32)
    backbone = tiny_backbone()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    rois = torch.tensor([[3.0, 5.0, 29.0, 27.0, 0.4], [2.0, 2.0, 30.0, 30.0, -2.0]])
    model = WarpThenBackbone(warp, backbone, with_rois).eval()
    with torch.no_grad():
        want = model(images, rois).numpy()
    got = export_and_run(model, (images, rois))
    assert got.shape == want.shape
    assert abs(got - want).max() < 1e-4


@pytest.mark.slow
def test_polar_warp_in_front_of_every_registered_backbone() -> None:
    """Registry-driven: every backbone that loads, behind roi_tanh_polar at 112x112."""
    from facebone.plugin.discovery import load_plugins

    plugins = load_plugins()
    warp = build_warp("roi_tanh_polar", 112)
    images = torch.rand(2, 3, 112, 112) * 2 - 1
    rois = torch.tensor([[11.2, 11.2, 100.8, 100.8, 0.0]]).repeat(2, 1)
    names = plugins.registry("backbone").names()
    assert "rtnet50" in names
    for name in names:
        comp = plugins.registry("backbone").get(name)
        options, problems = build_options(comp.options, {}, "[backbone]")
        assert not problems
        torch.manual_seed(0)
        backbone = comp.factory(options, embedding_size=512, image_size=112)
        # batch-norm statistics of real activations: with the initial ones a deep untrained net's
        # eval-mode activations overflow to inf/nan, which would make the comparison meaningless
        with torch.no_grad():
            torch.optim.swa_utils.update_bn([warp(torch.rand(4, 3, 112, 112) * 2 - 1)], backbone)
        model = WarpThenBackbone(warp, backbone.eval(), with_rois=False).eval()
        with torch.no_grad():
            want = model(images, rois).numpy()
        assert np.isfinite(want).all(), name
        got = export_and_run(model, (images, rois))
        assert abs(got - want).max() < 1e-3 * max(1.0, abs(want).max()), name
