"""RTNet: a ResNet-50-style backbone for RoI Tanh-polar inputs (Lin et al., arXiv 2102.02717).

Every 3x3 convolution of the bottleneck is split in two half-width branches:

- *polar*: convolves the polar map with circular padding along the angle axis (rows) and
  replicate padding along the radius axis (columns);
- *hybrid*: converts the polar map to the RoI Tanh (Cartesian) space, convolves with zero
  padding and converts back. The first block of each stage (the one that may downsample)
  convolves the polar map directly with zero padding instead.

The conversions use fixed sampling grids for a square RoI (RTNet expects ``roi_tanh_polar``
with ``keep_aspect_ratio = true`` on a square crop), computed once per feature-map size and
kept as non-persistent buffers, so state dicts hold only weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facebone.plugins.warps import mapping as M
from facebone.plugins.warps.modules import sample_polar

LAYERS_50 = (3, 4, 6, 3)
EXPANSION = 4
_UNIT_ROI = torch.tensor([[-0.5, -0.5, 0.5, 0.5, 0.0]])


def _down(n: int) -> int:
    """Size after a stride-2 conv/pool with 'same'-style padding (7x7 p3, 3x3 p1)."""
    return (n - 1) // 2 + 1


def polar_to_tanh_points(hw: tuple[int, int]) -> torch.Tensor:
    """``(1, H, W, 2)`` polar-map pixel coordinates of each RoI Tanh pixel centre (same size)."""
    local = M.tanh_to_local(M.pixel_centres(hw)[None], _UNIT_ROI, hw)
    return M.local_to_polar(local, _UNIT_ROI, hw, keep_aspect_ratio=True)


def tanh_to_polar_grid(hw: tuple[int, int]) -> torch.Tensor:
    """``(1, H, W, 2)`` grid_sample coordinates in the RoI Tanh map of each polar pixel centre."""
    local = M.polar_to_local(M.pixel_centres(hw)[None], _UNIT_ROI, hw, keep_aspect_ratio=True)
    return M.to_grid(M.local_to_tanh(local, _UNIT_ROI, hw), hw)


class PolarConv3x3(nn.Module):
    """3x3 convolution on a polar map: circular padding over angles, replicate over radii."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, :, -1:], x, x[:, :, :1]], dim=2)  # angle seam (written out: ONNX-friendly)
        x = F.pad(x, (1, 1, 0, 0), mode="replicate")
        return self.conv(x)


class TanhSpaceConv3x3(nn.Module):
    """Polar map -> RoI Tanh space -> zero-padded 3x3 conv -> back to polar (stride 1)."""

    def __init__(self, cin: int, cout: int, hw: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.register_buffer("to_tanh", polar_to_tanh_points(hw), persistent=False)
        self.register_buffer("to_polar", tanh_to_polar_grid(hw), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        cart = sample_polar(x, self.to_tanh.expand(n, -1, -1, -1))
        cart = self.conv(cart)
        grid = self.to_polar.expand(n, -1, -1, -1).to(cart.dtype)
        return F.grid_sample(cart, grid, mode="bilinear", padding_mode="border", align_corners=False)


class HybridBottleneck(nn.Module):
    """Bottleneck (expansion 4) whose 3x3 conv is split into a polar and a hybrid half."""

    def __init__(self, cin: int, planes: int, stride: int, hw_out: tuple[int, int], hybrid: bool):
        super().__init__()
        width = planes // 2
        self.reduce_a = nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.reduce_b = nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.polar = nn.Sequential(PolarConv3x3(width, width, stride), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        second = TanhSpaceConv3x3(width, width, hw_out) if hybrid else \
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.hybrid = nn.Sequential(second, nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.expand = nn.Sequential(nn.Conv2d(2 * width, planes * EXPANSION, 1, bias=False),
                                    nn.BatchNorm2d(planes * EXPANSION))
        self.downsample = None
        if stride != 1 or cin != planes * EXPANSION:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * EXPANSION, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes * EXPANSION))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([self.polar(self.reduce_a(x)), self.hybrid(self.reduce_b(x))], dim=1)
        out = self.expand(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class RTNet(nn.Module):
    """RTNet backbone: ``(N, 3, H, W)`` RoI Tanh-polar images -> ``(N, embedding_size)``."""

    def __init__(self, *, embedding_size: int = 512, image_size: int = 112, layers: tuple[int, ...] = LAYERS_50,
                 hybrid: bool = True, dropout: float = 0.0):
        super().__init__()
        self.embedding_size = embedding_size
        self.input_size = (image_size, image_size)
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                                  nn.PReLU(64), nn.MaxPool2d(3, stride=2, padding=1))
        size = _down(_down(image_size))
        cin, stages = 64, []
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            size = size if stride == 1 else _down(size)
            stage = [HybridBottleneck(cin, planes, stride, (size, size), hybrid=False)]
            cin = planes * EXPANSION
            stage += [HybridBottleneck(cin, planes, 1, (size, size), hybrid=hybrid) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.final_size = size
        self.bn = nn.BatchNorm2d(cin)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin * size * size, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # residual branches start at zero: each block starts as identity
            if isinstance(m, HybridBottleneck):
                nn.init.zeros_(m.expand[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = self.dropout(torch.flatten(self.bn(x), 1))
        return self.features(self.fc(x))
