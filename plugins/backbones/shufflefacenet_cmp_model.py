"""ShuffleFaceNet as the backbone comparison measured it (github ItO210/arcface-backbone-comparative,
"Lightweight Backbone Evaluation for Face Recognition with ArcFace").

A simplified network, not the ShuffleFaceNet paper's (that one is
:mod:`facebone.plugins.backbones.shufflefacenet_model`). Differences from the paper's net:
- a 3x3 max pool (stride 2) after the stem, and strides 2 / 2 / 1 for stages 2-4, so the
  stages output 14, 7 and 7 pixel maps from a 112 input (the paper's: 28, 14, 7);
- a different downsampling (or widening) unit: branch 1 is 1x1 ``cin -> cout/2`` + BN +
  PReLU, depthwise 3x3 (stride) + BN, 1x1 ``cout/2 -> cout - cin`` + BN + PReLU; branch 2 is
  depthwise 3x3 (stride) on the whole input + BN, 1x1 ``cin -> cin`` + BN + PReLU; the
  outputs are concatenated (``cout - cin`` then ``cin`` channels) and shuffled;
- ``conv5`` has 1024 channels, 2048 at 2.0x;
- the GDC (depthwise conv over the whole final map) is followed by BN *and PReLU*;
- the linear layer to the embedding has a bias, followed by BatchNorm1d (affine).

Key names are those of the comparison repository's checkpoints (``conv1.0``, ``stage2.0.branch1.3``,
``gdc.2``, ``fc``, ``bn``, ...), so its ``state_dict`` loads unchanged.

Widths (stage 2/3/4 channels) by complexity: 0.5x 48/96/192, 1.0x 116/232/464, 1.5x
176/352/704, 2.0x 244/488/976. **The repository's registry swaps two names:** its ``sfn1_0``
builds the 1.5x net and its ``sfn1_5`` the 1.0x net (its paper's Table 1 inherits the swap).
facebone's names say the real width: ``shufflefacenet_cmp_1_5`` loads an ``sfn1_0`` checkpoint.

Parameters / MACs at 112x112 with 512-D embeddings: 0.5x 0.92M / 0.021G, 1.0x 1.84M / 0.070G,
1.5x 3.07M / 0.139G, 2.0x 6.52M / 0.293G (the comparison paper's Table 1 figures for these
nets, e.g. 0.455M for 0.5x, cannot come from this network: its fc alone has 0.525M).
"""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.backbones.shufflefacenet_model import channel_shuffle

WIDTHS = {"0.5": (48, 96, 192), "1.0": (116, 232, 464), "1.5": (176, 352, 704), "2.0": (244, 488, 976)}
REPEATS = (4, 8, 4)
STEM = 24


def _conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, prelu: bool = True) -> list[nn.Module]:
    mods: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return mods + [nn.PReLU(cout)] if prelu else mods


class ComparisonShuffleUnit(nn.Module):
    """Stride 1 with ``cin == cout``: transform the second half of the channels (1x1, dw 3x3, 1x1),
    keep the first. Otherwise two branches producing ``cout - cin`` and ``cin`` channels.
    Both end in a 2-group channel shuffle."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        half = cout // 2
        self.split = stride == 1 and cin == cout
        if self.split:
            self.branch2 = nn.Sequential(*_conv_bn(half, half), *_conv_bn(half, half, 3, stride, half, prelu=False),
                                         *_conv_bn(half, half))
        else:
            self.branch1 = nn.Sequential(*_conv_bn(cin, half), *_conv_bn(half, half, 3, stride, half, prelu=False),
                                         *_conv_bn(half, cout - cin))
            self.branch2 = nn.Sequential(*_conv_bn(cin, cin, 3, stride, cin, prelu=False), *_conv_bn(cin, cin))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split:
            keep, change = x.chunk(2, dim=1)
            out = torch.cat([keep, self.branch2(change)], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return channel_shuffle(out, 2)


class ComparisonShuffleFaceNet(nn.Module):
    """The comparison repository's ShuffleFaceNet at width ``scale`` in {"0.5", "1.0", "1.5", "2.0"}:
    ``(N, 3, H, W)`` in [-1, 1] -> ``(N, embedding_size)``; ``H = W`` divisible by 16 (the
    GDC kernel covers the final ``H/16`` map: 7 at 112, the repository's only size)."""

    def __init__(self, scale: str = "1.0", *, embedding_size: int = 512, image_size: int = 112):
        super().__init__()
        if scale not in WIDTHS:
            raise ValueError(f"scale must be one of {sorted(WIDTHS)}, got {scale!r}")
        if image_size % 16 or image_size < 16:
            raise ValueError(f"shufflefacenet_cmp needs an image size divisible by 16, got {image_size}")
        self.embedding_size = embedding_size
        self.input_size = (image_size, image_size)
        c5 = 2048 if scale == "2.0" else 1024
        self.conv1 = nn.Sequential(*_conv_bn(3, STEM, 3, 2))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = STEM
        for name, cout, n, stride in zip(("stage2", "stage3", "stage4"), WIDTHS[scale], REPEATS, (2, 2, 1)):
            units = [ComparisonShuffleUnit(cin, cout, stride)] + [ComparisonShuffleUnit(cout, cout, 1)
                                                                   for _ in range(n - 1)]
            setattr(self, name, nn.Sequential(*units))
            cin = cout
        self.conv5 = nn.Sequential(*_conv_bn(cin, c5))
        k = image_size // 16
        self.gdc = nn.Sequential(nn.Conv2d(c5, c5, k, 1, 0, groups=c5, bias=False), nn.BatchNorm2d(c5), nn.PReLU(c5))
        self.fc = nn.Linear(c5, embedding_size)
        self.bn = nn.BatchNorm1d(embedding_size)
        self._init_weights()

    def _init_weights(self) -> None:
        """As the repository: Kaiming (fan_out) convs, Xavier-normal linear, BN weight 1 and bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.bn(self.fc(self.gdc(x).flatten(1)))
