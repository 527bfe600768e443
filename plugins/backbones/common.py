"""Building blocks shared by several backbones (iResNet, GWP iResNet, BTNet, ...).

Imports torch: import this module lazily from a plugin's factory, never from a hook module.
"""
from __future__ import annotations

import torch
from torch import nn


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias."""
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class IBasicBlock(nn.Module):
    """The improved residual unit of iResNet / ArcFace: BN-conv3x3-BN-PReLU-conv3x3(stride)-BN.

    The attribute names (``bn1, conv1, bn2, prelu, conv2, bn3, downsample``) are those of
    InsightFace's checkpoints; the stride sits on the second convolution, as there.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = conv3x3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = conv3x3(cout, cout, stride)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


def gaussian_weights(size: int, sigma: float) -> torch.Tensor:
    """A ``(size, size)`` isotropic Gaussian centred on the map, normalised to sum 1.

    ``w[i, j] = exp(-((i - c)^2 + (j - c)^2) / (2 sigma^2)) / Z`` with ``c = (size - 1) / 2``.
    At ``size=7, sigma=3`` this is the GWP kernel of "Revisiting Linearization of Spatial
    Maps in State-of-the-Art Face Recognition Backbone" (IJCB 2024).
    """
    if size < 1 or not sigma > 0:
        raise ValueError(f"gaussian_weights needs size >= 1 and sigma > 0, got size={size}, sigma={sigma}")
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(torch.float32)


def gwp_sigma(size: int) -> float:
    """The GWP sigma for a final map of ``size``: 3 at 7 (the paper), scaled as 3*size/7 otherwise."""
    return 3.0 * size / 7.0


class GaussianWeightedPool(nn.Module):
    """Global Gaussian-weighted pooling, as the GWP paper's code computes it: ``(N, C, s, s) -> (N, C)``.

    The map is multiplied by the fixed Gaussian (which sums to 1) and then averaged over its
    ``s * s`` positions, so the effective weights are ``gaussian / s**2`` (``/ 49`` at the
    paper's 7x7 map): ``pool(x)[n, c] = mean_ij(w_ij * x[n, c, i, j])``. A constant map of
    value 1 pools to ``1 / s**2``, not 1. The kernel is a non-persistent buffer (a function of
    the map size, not a learnt weight), so it follows ``.to(device/dtype)`` and is absent from
    checkpoints.
    """

    def __init__(self, size: int, sigma: float | None = None):
        super().__init__()
        self.size = size
        self.sigma = gwp_sigma(size) if sigma is None else sigma
        self.register_buffer("weight", gaussian_weights(size, self.sigma), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the paper's order of operations: elementwise product, then AdaptiveAvgPool2d(1)
        return nn.functional.adaptive_avg_pool2d(x * self.weight.to(x.dtype), 1).flatten(1)


def make_pool(pooling: str, size: int) -> nn.Module:
    """The pooling module for ``pooling`` in {"flatten", "gap", "gwp"} at final map ``size``."""
    if pooling == "flatten":
        return nn.Flatten(1)
    if pooling == "gap":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    if pooling == "gwp":
        return GaussianWeightedPool(size)
    raise ValueError(f"unknown pooling {pooling!r}")


def pooled_features(pooling: str, channels: int, size: int) -> int:
    """Length of the vector that ``make_pool(pooling, size)`` produces from ``channels`` maps."""
    return channels * size * size if pooling == "flatten" else channels


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def init_conv_bn(model: nn.Module, conv_std: float | None = None) -> None:
    """Convs: normal(0, conv_std) if given, else Kaiming (fan_out); BN: weight 1, bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if conv_std is None:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, conv_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

