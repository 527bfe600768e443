"""iResNet (ArcFace's improved ResNet), state-dict compatible with InsightFace's arcface_torch.

Layout (InsightFace key names): stem ``conv1`` (3x3, stride 1), ``bn1``, ``prelu``; stages
``layer1..layer4`` of :class:`IBasicBlock` with ``width * (1, 2, 4, 8)`` channels, each
halving the map; then ``bn2``, pooling, dropout, ``fc`` and ``features`` (BatchNorm1d whose
weight is fixed to 1, as in InsightFace). At 112x112 the final map is 7x7.
"""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.backbones.common import IBasicBlock, init_conv_bn, make_pool, pooled_features

DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    200: (6, 26, 60, 6),
}
"""Blocks per stage for each depth, as published with ArcFace / InsightFace."""


class IResNet(nn.Module):
    """iResNet backbone: ``(N, 3, H, W)`` in [-1, 1] -> ``(N, embedding_size)``.

    ``pooling``: "flatten" (InsightFace: linear on the whole C x s x s map), "gap" (average
    over the map) or "gwp" (the map times a fixed Gaussian that sums to 1, then averaged, as
    the GWP paper's code does). ``H`` and ``W`` must be
    divisible by 16; the final map is ``(H/16, W/16)``. ``stem7x7`` replaces the 3x3 stem
    convolution by a 7x7 one (stride 1, padding 3), as in the GWP paper's registered net
    (``pooling="gwp", stem7x7=True`` is that net; ``pooling="gap", stem7x7=True`` its
    ``iresnet_gap.py`` ablation).
    """

    def __init__(self, layers: tuple[int, int, int, int], *, embedding_size: int = 512, image_size: int = 112,
                 pooling: str = "flatten", dropout: float = 0.0, width: int = 64, stem7x7: bool = False):
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ValueError(f"iresnet needs an image size divisible by 16, got {image_size}")
        self.embedding_size = embedding_size
        self.input_size = (image_size, image_size)
        self.pooling = pooling
        map_size = image_size // 16
        k = 7 if stem7x7 else 3
        self.conv1 = nn.Conv2d(3, width, kernel_size=k, stride=1, padding=k // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-5)
        self.prelu = nn.PReLU(width)
        cin = width
        for i, blocks in enumerate(layers):
            cout = width * 2 ** i
            stage = [IBasicBlock(cin, cout, stride=2)] + [IBasicBlock(cout, cout) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = cout
        self.bn2 = nn.BatchNorm2d(cin, eps=1e-5)
        self.pool = make_pool(pooling, map_size)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(pooled_features(pooling, cin, map_size), embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-5)
        init_conv_bn(self, conv_std=0.1)
        nn.init.ones_(self.features.weight)
        self.features.weight.requires_grad = False

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final map ``(N, 8*width, H/16, W/16)`` before ``bn2``."""
        x = self.prelu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.bn2(self.forward_features(x)))
        return self.features(self.fc(self.dropout(x)))


def iresnet(depth: int, **kwargs) -> IResNet:  # type: ignore[no-untyped-def]
    """``iresnet(50, embedding_size=512, image_size=112, pooling="gwp")``."""
    if depth not in DEPTHS:
        raise ValueError(f"iresnet depth must be one of {sorted(DEPTHS)}, got {depth}")
    return IResNet(DEPTHS[depth], **kwargs)
