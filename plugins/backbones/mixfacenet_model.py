"""MixFaceNets (Boutros et al., "MixFaceNets: Extremely Efficient Face Recognition Networks", IJCB 2021).

MixNet-S / MixNet-M (Tan & Le, "MixConv", 2019) adapted to faces as the paper describes:
a 3x3 stride-2 stem and a depthwise unit (PReLU), four stages of MixConv inverted-residual
units (mixed depthwise kernels 3, 5, 7, 9, 11 split over channel groups; grouped 1x1
expansion / projection; squeeze-and-excitation) with PReLU in the first stage and Swish
after, down-sampling so that the final map is 7x7 at 112x112 (stage 2 and 3 start with
stride 2, stage 4 strides at its middle unit), a 1x1 conv to ``gdw`` channels (PReLU), and
the GDC embedding head: linear 7x7 depthwise conv + BN, linear 1x1 conv to D, BatchNorm1d
(weight fixed to 1). ``shuffle=True`` adds a 2-group channel shuffle after every unit
(ShuffleMixFaceNet). Unit tables (channels, kernel counts, expansion and SE factors) are
MixNet-S / -M's, as used by the paper's public code; XS halves the widths of S.

Paper's table (MFLOPs / params at 112x112, 512-D): XS 161.9 / 1.04M, S 451.7 / 3.07M,
M 626.1 / 3.95M. This module: XS 1,040,866, S 3,073,110, M 3,953,046 parameters; FLOPs
(2 x MACs of convolutions and linear layers, torch.utils.flop_counter) 153.1M, 436.3M,
606.8M: 3-5% below the paper, whose counter also counts BN, activations and SE gating.
XS and S differ only in width (0.5 vs 1.0); S and M use 1024 GDC channels, XS 512.
"""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.backbones.common import init_conv_bn

# Per stage, per unit: (out channels, expansion kernel count, depthwise kernel count,
# projection kernel count, expansion factor, SE factor).
MIXNET_S = (16, [
    [(24, 2, 1, 2, 6, 0), (24, 2, 1, 2, 3, 0)],
    [(40, 1, 3, 1, 6, 2), (40, 2, 2, 2, 6, 2), (40, 2, 2, 2, 6, 2), (40, 2, 2, 2, 6, 2)],
    [(80, 1, 3, 2, 6, 4), (80, 1, 2, 2, 6, 4), (80, 1, 2, 2, 6, 4)],
    [(120, 2, 3, 2, 6, 2), (120, 2, 4, 2, 3, 2), (120, 2, 4, 2, 3, 2),
     (200, 1, 5, 1, 6, 2), (200, 1, 4, 2, 6, 2), (200, 1, 4, 2, 6, 2)],
])
MIXNET_M = (24, [
    [(32, 2, 3, 2, 6, 0), (32, 2, 1, 2, 3, 0)],
    [(40, 1, 4, 1, 6, 2), (40, 2, 2, 2, 6, 2), (40, 2, 2, 2, 6, 2), (40, 2, 2, 2, 6, 2)],
    [(80, 1, 3, 1, 6, 4), (80, 2, 4, 2, 6, 4), (80, 2, 4, 2, 6, 4), (80, 2, 4, 2, 6, 4)],
    [(120, 1, 1, 1, 6, 2), (120, 2, 4, 2, 3, 2), (120, 2, 4, 2, 3, 2), (120, 2, 4, 2, 3, 2),
     (200, 1, 4, 1, 6, 2), (200, 1, 4, 2, 6, 2), (200, 1, 4, 2, 6, 2), (200, 1, 4, 2, 6, 2)],
])
VARIANTS = {"xs": (MIXNET_S, 0.5, 512), "s": (MIXNET_S, 1.0, 1024), "m": (MIXNET_M, 1.0, 1024)}
"""name -> (unit table, width multiplier, gdw channels)."""


def round_channels(c: float, divisor: int = 8) -> int:
    """Width after a multiplier, rounded to a multiple of ``divisor`` (never below 90%)."""
    r = max(int(c + divisor / 2.0) // divisor * divisor, divisor)
    return r + divisor if r < 0.9 * c else r


def split(c: int, n: int) -> list[int]:
    """``c`` channels in ``n`` groups; the first takes the remainder."""
    parts = [c // n] * n
    parts[0] += c - sum(parts)
    return parts


def act(kind: str, c: int) -> nn.Module:
    return nn.PReLU(c) if kind == "prelu" else nn.SiLU()


class MixConv(nn.Module):
    """Channel groups, each with its own conv; ``depthwise`` uses kernels 3, 5, 7, ... per group,
    otherwise each group is a full ``kernel`` conv (1x1: a block-diagonal 1x1 convolution)."""

    def __init__(self, cin: int, cout: int, count: int, stride: int = 1, depthwise: bool = False, kernel: int = 1):
        super().__init__()
        self.splits = split(cin, count)
        outs = split(cout, count)
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, 3 + 2 * k if depthwise else kernel, stride, (1 + k) if depthwise else kernel // 2,
                      groups=o if depthwise else 1, bias=False)
            for k, (i, o) in enumerate(zip(self.splits, outs)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.convs) == 1:
            return self.convs[0](x)
        return torch.cat([conv(part) for conv, part in zip(self.convs, x.split(self.splits, dim=1))], dim=1)


class ConvBNAct(nn.Sequential):
    """MixConv (or plain conv) -> BN -> activation (none if ``kind`` is None)."""

    def __init__(self, cin: int, cout: int, count: int = 1, stride: int = 1, depthwise: bool = False,
                 kind: str | None = "prelu", kernel: int = 1):
        layers: list[nn.Module] = [MixConv(cin, cout, count, stride, depthwise, kernel), nn.BatchNorm2d(cout)]
        if kind is not None:
            layers.append(act(kind, cout))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel gates from globally pooled features: 1x1 -> act -> 1x1 -> sigmoid."""

    def __init__(self, c: int, mid: int, kind: str):
        super().__init__()
        self.reduce = nn.Conv2d(c, mid, 1)
        self.act = act(kind, mid)
        self.expand = nn.Conv2d(mid, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(w))))


class MixUnit(nn.Module):
    """MixNet inverted residual: (expand) -> mixed depthwise (stride) -> (SE) -> linear project."""

    def __init__(self, cin: int, cout: int, stride: int, exp_k: int, dw_k: int, proj_k: int, exp: int, se: int,
                 kind: str, shuffle: bool):
        super().__init__()
        mid = cin * exp
        self.residual = cin == cout and stride == 1
        self.shuffle = shuffle
        self.expand = ConvBNAct(cin, mid, exp_k, kind=kind) if exp > 1 else nn.Identity()
        self.dw = ConvBNAct(mid, mid, dw_k, stride, depthwise=True, kind=kind)
        self.se = SqueezeExcite(mid, cin // se, kind) if se > 0 else nn.Identity()
        self.project = ConvBNAct(mid, cout, proj_k, kind=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        if self.residual:
            y = y + x
        if self.shuffle:
            n, c, h, w = y.shape
            y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return y


class MixFaceNet(nn.Module):
    """MixFaceNet ``variant`` in {"xs", "s", "m"}: ``(N, 3, H, W)`` -> ``(N, D)``; H, W divisible by 16."""

    def __init__(self, variant: str = "s", *, embedding_size: int = 512, image_size: int = 112, shuffle: bool = False):
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ValueError(f"mixfacenet needs an image size divisible by 16, got {image_size}")
        (stem, table), width, gdw = VARIANTS[variant]
        self.embedding_size = embedding_size
        self.input_size = (image_size, image_size)
        c = round_channels(stem * width) if width != 1.0 else stem
        units: list[nn.Module] = [ConvBNAct(3, c, 1, 2, kind="prelu", kernel=3),
                                  MixUnit(c, c, 1, 1, 1, 1, 1, 0, "prelu", shuffle)]
        for i, stage in enumerate(table):
            for j, (cout, exp_k, dw_k, proj_k, exp, se) in enumerate(stage):
                cout = round_channels(cout * width) if width != 1.0 else cout
                stride = 2 if (j == 0 and i in (1, 2)) or (i == 3 and j == len(stage) // 2) else 1
                units.append(MixUnit(c, cout, stride, exp_k, dw_k, proj_k, exp, se,
                                     "prelu" if i == 0 else "swish", shuffle))
                c = cout
        self.body = nn.Sequential(*units)
        self.tail = ConvBNAct(c, gdw, kind="prelu")
        k = image_size // 16
        self.gdc = nn.Sequential(nn.Conv2d(gdw, gdw, k, groups=gdw, bias=False), nn.BatchNorm2d(gdw),
                                 nn.Conv2d(gdw, embedding_size, 1, bias=False), nn.Flatten(1))
        self.features = nn.BatchNorm1d(embedding_size)
        init_conv_bn(self)
        self.features.weight.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.gdc(self.tail(self.body(x))))
