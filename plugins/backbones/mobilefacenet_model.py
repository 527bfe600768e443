"""MobileFaceNet with InsightFace arcface_torch ``mbf`` / ``mbf_large`` state-dict keys.

Architecture (Chen et al., "MobileFaceNets", 2018, as configured in arcface_torch): a 3x3
stride-2 stem, a grouped 3x3 conv (or residual stage), then four inverted-residual stages
whose first unit halves the map, a 1x1 conv to 512 channels and the GDC head (linear
depthwise conv over the whole final map, linear, BatchNorm1d). Module tree and key names
follow arcface_torch (``layers.N...``, ``conv_sep``, ``features.layers.{0,2,3}``), so its
checkpoints load with ``strict=True``. Parameters at 112x112 with 512-D embeddings:
mbf 2,059,520 (2.06M), mbf_large 6,314,880 (6.31M).
"""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.backbones.common import init_conv_bn


class ConvUnit(nn.Module):
    """conv (no bias) -> BN -> PReLU, or without PReLU when ``linear``; keys ``layers.{0,1,2}``."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, linear: bool = False,
                 padding: int | None = None):
        super().__init__()
        pad = kernel // 2 if padding is None else padding
        parts: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False),
                                  nn.BatchNorm2d(cout)]
        if not linear:
            parts.append(nn.PReLU(cout))
        self.layers = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand to ``hidden``, depthwise 3x3 (stride), linear 1x1 project."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int = 1, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(ConvUnit(cin, hidden), ConvUnit(hidden, hidden, 3, stride, groups=hidden),
                                    ConvUnit(hidden, cout, linear=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return x + y if self.residual else y


class Stage(nn.Module):
    """``n`` residual bottlenecks at constant width (key prefix ``layers.i``)."""

    def __init__(self, c: int, n: int, hidden: int):
        super().__init__()
        self.layers = nn.Sequential(*[Bottleneck(c, c, hidden, residual=True) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GDC(nn.Module):
    """Global depthwise conv head: linear depthwise ``k x k`` conv, flatten, linear, BatchNorm1d."""

    def __init__(self, channels: int, kernel: int, embedding_size: int):
        super().__init__()
        self.layers = nn.Sequential(
            ConvUnit(channels, channels, kernel, groups=channels, linear=True, padding=0),  # spans the map
            nn.Flatten(1),
            nn.Linear(channels, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MobileFaceNet(nn.Module):
    """MobileFaceNet: ``(N, 3, H, W)`` in [-1, 1] -> ``(N, embedding_size)``; H, W divisible by 16.

    ``blocks`` are the residual units per stage and ``scale`` the width multiplier
    (mbf: (1, 4, 6, 2), 2; mbf_large: (2, 8, 12, 4), 4). The expansion widths (128, 256, 512
    groups) are fixed as in arcface_torch.
    """

    def __init__(self, *, embedding_size: int = 512, image_size: int = 112,
                 blocks: tuple[int, int, int, int] = (1, 4, 6, 2), scale: int = 2):
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ValueError(f"mobilefacenet needs an image size divisible by 16, got {image_size}")
        self.embedding_size = embedding_size
        self.input_size = (image_size, image_size)
        c1, c2 = 64 * scale, 128 * scale
        self.layers = nn.ModuleList([ConvUnit(3, c1, 3, 2)])
        if blocks[0] == 1:
            self.layers.append(ConvUnit(c1, c1, 3, 1, groups=64))
        else:
            self.layers.append(Stage(c1, blocks[0], 128))
        self.layers.extend([
            Bottleneck(c1, c1, 128, stride=2), Stage(c1, blocks[1], 128),
            Bottleneck(c1, c2, 256, stride=2), Stage(c2, blocks[2], 256),
            Bottleneck(c2, c2, 512, stride=2), Stage(c2, blocks[3], 256),
        ])
        self.conv_sep = ConvUnit(c2, 512)
        self.features = GDC(512, image_size // 16, embedding_size)
        init_conv_bn(self)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.features(self.conv_sep(x))
