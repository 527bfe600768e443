"""ShuffleFaceNet: complexity against the paper's table, unit behaviour."""
from __future__ import annotations

import pytest
import torch

from facebone.model.complexity import count
from facebone.plugins.backbones.shufflefacenet_model import ShuffleFaceNet, ShuffleUnit, channel_shuffle

# ShuffleFaceNet paper (ICCVW 2019), complexity table: params (M), FLOPs (M) at 112x112, 128-D features.
PAPER = {"0.5": (0.5, 66.9), "1.0": (1.4, 275.8), "1.5": (2.6, 577.5), "2.0": (4.5, 1050.0)}


@pytest.mark.parametrize("scale", list(PAPER))
def test_complexity_matches_paper(scale: str) -> None:
    params, flops = PAPER[scale]
    c = count(ShuffleFaceNet(scale, embedding_size=128))
    assert abs(c["params"] / 1e6 - params) / params < 0.06  # paper rounds to 0.1M
    assert abs(c["flops"] / 1e6 - flops) / flops < 0.01  # the paper's FLOPs are 2 x MACs


def test_512d_adds_only_the_linear_layer() -> None:
    a = sum(p.numel() for p in ShuffleFaceNet("1.0", embedding_size=128).parameters())
    b = sum(p.numel() for p in ShuffleFaceNet("1.0", embedding_size=512).parameters())
    assert b - a == 1024 * 384 + 2 * 384


def test_channel_shuffle_interleaves() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_split_unit_passes_half_the_channels_through() -> None:
    unit = ShuffleUnit(8, 8, 1).eval()
    x = torch.randn(1, 8, 5, 5)
    out = unit(x)
    # after the shuffle, even channels are the untouched first half of the input
    torch.testing.assert_close(out[:, 0::2], x[:, :4])
    down = ShuffleUnit(8, 16, 2)
    assert down(x).shape == (1, 16, 3, 3)


def test_final_map_and_gdc_kernel() -> None:
    m = ShuffleFaceNet("0.5", image_size=128)
    assert m.gdc[0].kernel_size == (8, 8)
    assert m(torch.randn(2, 3, 128, 128)).shape == (2, 512)
