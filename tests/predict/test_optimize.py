"""Inference backbones: batch norm folded exactly, bf16 weights close to fp32, untraceable models kept."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from facebone.model.build import build_backbone
from facebone.predict.optimize import fold_batchnorm, inference_backbone, run_backbone

torch.set_num_threads(1)


def _trained_like(name: str, size: int = 32, **options):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_backbone(name, options, embedding_size=32, image_size=size)
    update_bn([torch.rand(8, 3, size, size) * 2 - 1], model)
    for m in model.modules():  # non-trivial affine BN parameters
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("name,options", [("iresnet18", {"width": 8}), ("mobilefacenet", {}), ("mixfacenet_xs", {})])
def test_folding_removes_batch_norms_and_keeps_the_output(name: str, options: dict) -> None:
    model = _trained_like(name, **options)
    before = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    folded, n = fold_batchnorm(model)
    after = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert n > 0 and after == before - n
    assert folded.embedding_size == model.embedding_size and folded.input_size == model.input_size
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ref, got = model(x), folded(x)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    assert sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()) == before  # unchanged


def test_iresnet_bf16_weights_stay_within_cosine_0999_of_fp32() -> None:
    model = _trained_like("iresnet18", width=16)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ref = model(x)
    net = inference_backbone(model, precision="bf16", channels_last=True)
    assert net.dtype == torch.bfloat16 and all(p.dtype == torch.bfloat16 for p in net.module.parameters())
    got = run_backbone(net, x)
    assert got.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(got, ref).min().item() >= 0.999


def test_an_untraceable_backbone_runs_unfolded() -> None:
    class Routing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding_size, self.input_sizes = 4, ((16, 16), (8, 8))
            self.a, self.b = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
            self.c = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU())

        def forward(self, x):  # type: ignore[no-untyped-def]
            if x.shape[-1] > 8:  # data-dependent: fx cannot trace it
                x = x[..., ::2, ::2]
            return self.c(self.b(self.a(x))).mean((2, 3))

    model = Routing()
    update_bn([torch.rand(4, 3, 16, 16)], model)
    model.eval()
    folded, n = fold_batchnorm(model)
    assert n == 1 and folded is not model and isinstance(folded, Routing)  # inside the traceable part only
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.c.modules()) and isinstance(folded.b, nn.BatchNorm2d)
    assert isinstance(model.c[1], nn.BatchNorm2d)
    x = torch.rand(2, 3, 16, 16)
    net = inference_backbone(model, precision="fp32")
    assert torch.allclose(run_backbone(net, x), model(x).detach())
    net = inference_backbone(model, precision="bf16")  # it routes (input_sizes): fp32 weights, bf16 autocast
    assert net.dtype == torch.float32 and net.autocast == "bf16" and model.a.weight.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(run_backbone(net, x), model(x).detach()).min() > 0.99


def test_the_evaluators_bf16_embedder_runs_the_predictors_network_and_leaves_the_model(make_predictor) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from facebone.eval.embedder import Embedder
    from facebone.predict.networks import TorchNetwork

    _, model = make_predictor("roi_tanh_polar")
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    embedder = Embedder(model, image_size=32, batch_size=4, precision="bf16", channels_last=True)
    views = embedder.views(images)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the live model is untouched
    assert next(model.parameters()).dtype == torch.float32
    net = TorchNetwork(model, image_size=32, flip=True, roi_warp=True, precision="bf16", channels_last=True)
    ours = net.embed_crops(images)
    cos = (views * ours).sum(-1) / np.linalg.norm(views, axis=-1) / np.linalg.norm(ours, axis=-1)
    assert cos.min() > 0.9999
    ref = Embedder(model, image_size=32, batch_size=4).views(images)
    cos = (views * ref).sum(-1) / np.linalg.norm(views, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert cos.min() > 0.999


SLOW = {"iresnet34", "iresnet50", "iresnet100", "iresnet200", "mobilefacenet_large", "rtnet50",
        "btnet34", "btnet50", "btnet100", "btnet200"}


def _backbones():  # type: ignore[no-untyped-def]
    from facebone.plugin.discovery import load_plugins

    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
            for n in load_plugins().registry("backbone").names()]


@pytest.mark.parametrize("name", _backbones())
def test_every_backbone_folds_exactly_and_runs_in_bf16(name: str) -> None:
    from facebone.errors import MissingDependencyError

    torch.manual_seed(0)
    try:
        model = build_backbone(name)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    update_bn([torch.rand(4, 3, 112, 112) * 2 - 1], model)
    model.eval()
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        ref = model(x)
    folded = run_backbone(inference_backbone(model, precision="fp32"), x)
    assert torch.nn.functional.cosine_similarity(folded, ref).min().item() > 0.99999
    low = run_backbone(inference_backbone(model, precision="bf16", channels_last=True), x)
    assert torch.nn.functional.cosine_similarity(low, ref).min().item() > 0.99
