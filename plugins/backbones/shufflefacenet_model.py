"""ShuffleFaceNet (Martinez-Diaz et al., "ShuffleFaceNet: A Lightweight Face Architecture for
Efficient and Highly-Accurate Face Recognition", ICCVW 2019).

ShuffleNetV2 units (channel split, 1x1 -> depthwise 3x3 -> 1x1, concatenation, channel
shuffle) with PReLU instead of ReLU; a 3x3 stride-2 stem (24 channels) and no max pool, so
the three stages (4, 8, 4 units, each starting with stride 2) run at 28, 14 and 7 pixels
from a 112x112 input; ShuffleNetV2's widths per complexity (0.5x: 48/96/192, 1x:
116/232/464, 1.5x: 176/352/704, 2x: 244/488/976); ``conv5`` 1x1 to 1024 channels; the GDC
head (linear depthwise conv over the whole 7x7 map, BN) instead of global average pooling;
a linear layer to the embedding; BatchNorm1d.

Checked against the paper's complexity table (params / FLOPs at 112x112, 128-D features):
0.5x 0.5M / 66.9M, 1x 1.4M / 275.8M, 1.5x 2.6M / 577.5M, 2x 4.5M / 1.05G. This module
gives, at 128-D: 0.528M / 67.0M, 1.443M / 276.0M, 2.670M / 577.6M, 4.538M / 1.053G, where
the paper's FLOPs equal 2 x multiply-accumulates. With facebone's default 512-D embedding
the final linear layer adds 1024 x 384 weights: 0.922M, 1.837M, 3.064M, 4.932M parameters.
"""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.backbones.common import init_conv_bn

WIDTHS = {"0.5": (48, 96, 192, 1024), "1.0": (116, 232, 464, 1024), "1.5": (176, 352, 704, 1024),
          "2.0": (244, 488, 976, 1024)}
REPEATS = (4, 8, 4)


def _cbp(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return layers + ([nn.PReLU(cout)] if act else [])


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1 with equal widths: split channels, transform one half.
    Otherwise (downsampling or widening): both branches see the whole input."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.split = stride == 1 and cin == cout
        half = cout // 2
        b_in = half if self.split else cin
        self.branch2 = nn.Sequential(*_cbp(b_in, half), *_cbp(half, half, 3, stride, groups=half, act=False),
                                     *_cbp(half, half))
        self.branch1 = None if self.split else nn.Sequential(
            *_cbp(cin, cin, 3, stride, groups=cin, act=False), *_cbp(cin, cout - half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.branch2(b)], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return channel_shuffle(out, 2)


class ShuffleFaceNet(nn.Module):
    """ShuffleFaceNet at complexity ``scale`` in {"0.5", "1.0", "1.5", "2.0"}."""

    def __init__(self, scale: str = "1.0", *, embedding_size: int = 512, image_size: int = 112):
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ValueError(f"shufflefacenet needs an image size divisible by 16, got {image_size}")
        self.embedding_size = embedding_size
        self.input_size = (image_size, image_size)
        c2, c3, c4, c5 = WIDTHS[scale]
        self.conv1 = nn.Sequential(*_cbp(3, 24, 3, 2))
        stages, cin = [], 24
        for cout, n, stride in zip((c2, c3, c4), REPEATS, (2, 2, 2)):
            stages.append(nn.Sequential(ShuffleUnit(cin, cout, stride), *[ShuffleUnit(cout, cout, 1) for _ in range(n - 1)]))
            cin = cout
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = nn.Sequential(*_cbp(c4, c5))
        k = image_size // 16
        self.gdc = nn.Sequential(nn.Conv2d(c5, c5, k, groups=c5, bias=False), nn.BatchNorm2d(c5), nn.Flatten(1))
        self.fc = nn.Linear(c5, embedding_size, bias=False)
        self.features = nn.BatchNorm1d(embedding_size)
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.features(self.fc(self.gdc(x)))
