"""MixFaceNets: complexity against the paper's table, MixConv behaviour, ShuffleMixFaceNet option."""
from __future__ import annotations

import pytest
import torch

from facebone.model.complexity import count
from facebone.plugins.backbones.mixfacenet_model import MixConv, MixFaceNet, round_channels, split

# MixFaceNets paper / official README: params (M), MFLOPs at 112x112 with 512-D embeddings.
PAPER = {"xs": (1.04, 161.9), "s": (3.07, 451.7), "m": (3.95, 626.1)}


@pytest.mark.parametrize("variant", list(PAPER))
def test_complexity_matches_paper(variant: str) -> None:
    params, mflops = PAPER[variant]
    c = count(MixFaceNet(variant))
    assert round(c["params"] / 1e6, 2) == params
    # our FLOPs count convolutions and linear layers only; the paper's counter adds BN,
    # activations and SE gating, hence a few percent more
    assert 0.93 < (c["flops"] / 1e6) / mflops < 1.0


def test_mixconv_kernels_and_split() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert round_channels(40 * 0.5) == 24 and round_channels(200 * 0.5) == 104
    dw = MixConv(10, 10, 3, stride=2, depthwise=True)
    assert [c.kernel_size for c in dw.convs] == [(3, 3), (5, 5), (7, 7)]
    assert all(c.groups == c.out_channels for c in dw.convs)
    x = torch.randn(2, 10, 8, 8)
    assert dw(x).shape == (2, 10, 4, 4)
    pw = MixConv(10, 6, 2)
    y = pw(x)
    # block-diagonal 1x1: the first output group sees only the first input group
    x2 = x.clone()
    x2[:, 5:] = 0
    torch.testing.assert_close(pw(x2)[:, :3], y[:, :3])


def test_shuffle_option_changes_outputs_not_parameters() -> None:
    torch.manual_seed(0)
    a = MixFaceNet("xs").eval()
    b = MixFaceNet("xs", shuffle=True).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
    assert not a.features.weight.requires_grad
