"""MixFaceNet as the backbone comparison measured it (github ItO210/arcface-backbone-comparative).

A simplified re-implementation, not the MixFaceNets paper's network (that one is
:mod:`facebone.plugins.backbones.mixfacenet_model`):
- stem: 3x3 conv stride 2 + BN + PReLU, then one unit (depthwise 3x3 + BN + PReLU, 1x1 + BN,
  identity residual);
- six stages of **one unit each**, no expansion (factor 1), strides 1, 2, 2, 2, 2, 2; a unit is
  a depthwise 3x3 (or a MixConv of 3x3 / 5x5 / 7x7 depthwise convs over near-equal channel
  splits, the first splits taking the remainder) + BN + Swish, squeeze-excitation (GAP, 1x1
  conv + BN + Swish to ``c // 4``, 1x1 conv with bias, sigmoid), then a linear 1x1 conv + BN;
- with ``shuffle`` (the repository's ShuffleMixFaceNet), a 2-group channel shuffle after
  every unit, stem unit included;
- the final map is 2x2 at 112 pixels (``ceil(H / 64)``), so the embedding head takes its
  fallback path: global average pool, 1x1 conv (no bias) + BN, BatchNorm1d.

The repository's embedding head also builds a GDC path (1x1 conv to 1024 + BN + PReLU,
7x7 depthwise + BN, 1x1 to 512 + BN) used only when the final map is at least 7x7, i.e.
for inputs of 385 pixels or more; at 112 it never runs. Its parameters (0.84M of the XS
net's 1.04M) are in the repository's checkpoints and in its paper's parameter counts. This
module computes the network as it runs at the repository's size and does not build them:
:func:`unused_head_shapes` lists them, so that an import can check and drop them. Image
sizes whose final map reaches 7x7 are refused.

Key names follow the repository's (``head.0.conv``, ``stages.stage2.conv1.conv.convs.1``,
``stages.stage2.se.conv2``, ``embedding.fallback_proj``, ``embedding.final_bn``, ...).
"""
from __future__ import annotations

import torch
from torch import nn

from facebone.plugins.backbones.shufflefacenet_model import channel_shuffle

CONFIGS: dict[str, tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]] = {
    "xs": ((8, 12, 16, 32, 64, 128, 256), ((3,), (3, 5, 7), (3, 5, 7), (3, 5, 7), (3, 5, 7), (3,))),
    "s": ((16, 24, 32, 64, 128, 256, 512), ((3,), (3, 5, 7), (3, 5, 7), (3, 5, 7), (3, 5, 7), (3,))),
    "m": ((16, 24, 40, 80, 160, 320, 640), ((3,), (3, 5, 7), (3,), (3, 5, 7), (3, 5, 7), (3,))),
}
"""Per variant: channels (stem, then the output of each of the six stages) and the depthwise kernels of each stage."""
GDC_WIDTH = 1024
GDC_KERNEL = 7
SE_REDUCTION = 4


def final_map_size(image_size: int) -> int:
    """Side of the final map: the stem and five stages halve it (rounding up)."""
    size = image_size
    for _ in range(6):
        size = (size + 1) // 2
    return size


def unused_head_shapes(variant: str, embedding_size: int = 512) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the repository's GDC head path, which never runs below 385 pixels."""
    c = CONFIGS[variant][0][-1]
    shapes: dict[str, tuple[int, ...]] = {"embedding.expand.weight": (GDC_WIDTH, c, 1, 1)}
    for bn, width in (("expand_bn", GDC_WIDTH), ("dw_bn", GDC_WIDTH), ("project_bn", embedding_size)):
        for s in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"embedding.{bn}.{s}"] = (width,)
        shapes[f"embedding.{bn}.num_batches_tracked"] = ()
    shapes["embedding.expand_act.weight"] = (GDC_WIDTH,)
    shapes["embedding.dw.weight"] = (GDC_WIDTH, 1, GDC_KERNEL, GDC_KERNEL)
    shapes["embedding.project.weight"] = (embedding_size, GDC_WIDTH, 1, 1)
    return shapes


class Swish(nn.Module):
    """``x * sigmoid(x)`` (SiLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class ConvBN(nn.Module):
    """``conv`` (no bias) -> ``bn`` -> optional ``act`` (attribute names as in the repository)."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, act: nn.Module | None = None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.act is None else self.act(x)


def split_channels(channels: int, parts: int) -> list[int]:
    """Near-equal split of ``channels``; the first ``channels % parts`` splits get one more."""
    base, extra = divmod(channels, parts)
    return [base + (i < extra) for i in range(parts)]


class MixDepthwise(nn.Module):
    """Depthwise convs of several kernel sizes over channel splits, concatenated; + BN + Swish."""

    def __init__(self, channels: int, kernels: tuple[int, ...], stride: int):
        super().__init__()
        self.splits = split_channels(channels, len(kernels))
        self.conv = nn.Module()
        self.conv.convs = nn.ModuleList(nn.Conv2d(c, c, k, stride, k // 2, groups=c, bias=False)
                                        for c, k in zip(self.splits, kernels))
        self.bn = nn.BatchNorm2d(channels)
        self.act = Swish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.splits, dim=1)
        x = torch.cat([conv(p) for conv, p in zip(self.conv.convs, parts)], dim=1)
        return self.act(self.bn(x))


class SqueezeExcite(nn.Module):
    """GAP -> 1x1 conv + BN + Swish (``c // 4``) -> 1x1 conv with bias -> sigmoid -> scale."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvBN(channels, max(1, channels // SE_REDUCTION), act=Swish())
        self.conv2 = nn.Conv2d(max(1, channels // SE_REDUCTION), channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.conv2(self.conv1(x.mean(dim=(2, 3), keepdim=True)))
        return x * torch.sigmoid(w)


class ComparisonMixUnit(nn.Module):
    """Depthwise (or mixed depthwise) conv + BN + act, optional SE, linear 1x1 + BN, residual
    when shapes allow, optional channel shuffle."""

    def __init__(self, cin: int, cout: int, stride: int, kernels: tuple[int, ...], *, stem: bool, shuffle: bool):
        super().__init__()
        self.residual = cin == cout and stride == 1
        self.shuffle = shuffle
        if len(kernels) == 1:
            act = nn.PReLU(cin) if stem else Swish()
            self.conv1 = nn.Sequential(nn.Conv2d(cin, cin, kernels[0], stride, kernels[0] // 2, groups=cin, bias=False),
                                       nn.BatchNorm2d(cin), act)
        else:
            self.conv1 = MixDepthwise(cin, kernels, stride)
        self.se = None if stem else SqueezeExcite(cin)
        self.conv2 = ConvBN(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.se is not None:
            out = self.se(out)
        out = self.conv2(out)
        if self.residual:
            out = out + x
        return channel_shuffle(out, 2) if self.shuffle else out


class FallbackEmbedding(nn.Module):
    """GAP -> 1x1 conv (no bias) + BN -> BatchNorm1d: the repository's head below 7x7 maps."""

    def __init__(self, channels: int, embedding_size: int):
        super().__init__()
        self.fallback_proj = nn.Conv2d(channels, embedding_size, 1, bias=False)
        self.fallback_bn = nn.BatchNorm2d(embedding_size)
        self.final_bn = nn.BatchNorm1d(embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fallback_bn(self.fallback_proj(x.mean(dim=(2, 3), keepdim=True)))
        return self.final_bn(x.flatten(1))


class ComparisonMixFaceNet(nn.Module):
    """The comparison repository's MixFaceNet-``variant`` (xs, s, m); ``shuffle`` gives its
    ShuffleMixFaceNet. ``(N, 3, H, W)`` in [-1, 1] -> ``(N, embedding_size)``; ``H`` from 16 to
    384 (the final map must stay below 7x7)."""

    def __init__(self, variant: str = "s", *, embedding_size: int = 512, image_size: int = 112,
                 shuffle: bool = False):
        super().__init__()
        if variant not in CONFIGS:
            raise ValueError(f"variant must be one of {sorted(CONFIGS)}, got {variant!r}")
        if not 16 <= image_size or final_map_size(image_size) >= GDC_KERNEL:
            raise ValueError(f"mixfacenet_cmp needs an image size from 16 to 384, got {image_size}")
        self.embedding_size = embedding_size
        self.input_size = (image_size, image_size)
        channels, kernels = CONFIGS[variant]
        c0 = channels[0]
        self.head = nn.Sequential(ConvBN(3, c0, 3, 2, act=nn.PReLU(c0)),
                                  ComparisonMixUnit(c0, c0, 1, (3,), stem=True, shuffle=shuffle))
        self.stages = nn.Sequential()
        for i, (cin, cout, ks) in enumerate(zip(channels[:-1], channels[1:], kernels)):
            self.stages.add_module(f"stage{i + 1}", ComparisonMixUnit(cin, cout, 1 if i == 0 else 2, ks, stem=False,
                                                                      shuffle=shuffle))
        self.embedding = FallbackEmbedding(channels[-1], embedding_size)
        self.variant = variant

    def unused_checkpoint_shapes(self) -> dict[str, tuple[int, ...]]:
        """The repository's GDC head tensors, in its checkpoints but never used here (import checks and drops them)."""
        return unused_head_shapes(self.variant, self.embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.stages(self.head(x)))
