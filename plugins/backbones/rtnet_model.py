"""RTNet: a ResNet-50-style backbone for RoI Tanh-polar inputs (Lin et al., arXiv 2102.02717).

The network of ibug ``face_embedding``'s ``rtnet50(dilated=False)``, with facebone's key
names (:mod:`facebone.weights.ibug` maps the original's). Every 3x3 convolution of the
bottleneck is split in two half-width branches:

- *polar*: convolves the polar map with circular padding along the angle axis (rows) and
  replicate padding along the radius axis (columns);
- *hybrid*: in the hybrid blocks (every block but the first of layers 2-4: 10 of 16), resamples
  the polar map into RoI Tanh (Cartesian) space, applies a zero-padded 3x3 convolution and its
  batch norm there and resamples back into polar space, with zero padding both ways; in the
  other blocks the zero-padded 3x3 convolution works on the polar map directly.

The resampling grids depend only on each RoI's aspect ratio (the RoI of the warp in front,
``forward(x, rois)``); with ``rois=None`` the RoI is square and fixed grids, cached per
feature-map size as non-persistent buffers, are used, so state dicts hold only weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facebone.plugins.warps import mapping as M
from facebone.plugins.warps.modules import sample_polar

LAYERS_50 = (3, 4, 6, 3)
EXPANSION = 4
_SQUARE_ROI = torch.tensor([[-0.5, -0.5, 0.5, 0.5, 0.0]])


def _down(n: int) -> int:
    """Size after a stride-2 conv/pool with 'same'-style padding (7x7 p3, 3x3 p1)."""
    return (n - 1) // 2 + 1


def polar_to_tanh_points(hw: tuple[int, int], rois: torch.Tensor = _SQUARE_ROI) -> torch.Tensor:
    """``(N, H, W, 2)`` polar-map pixel coordinates of each RoI Tanh pixel centre (same size).

    Only the size of ``rois`` (``(N, 4+)`` boxes) matters, and of that only the aspect ratio.
    """
    pts = M.pixel_centres(hw, device=rois.device).expand(rois.shape[0], -1, -1, -1)
    local = M.tanh_to_local(pts, rois, hw)
    return M.local_to_polar(local, rois, hw, keep_aspect_ratio=True)


def tanh_to_polar_grid(hw: tuple[int, int], rois: torch.Tensor = _SQUARE_ROI) -> torch.Tensor:
    """``(N, H, W, 2)`` grid_sample coordinates in the RoI Tanh map of each polar pixel centre."""
    pts = M.pixel_centres(hw, device=rois.device).expand(rois.shape[0], -1, -1, -1)
    local = M.polar_to_local(pts, rois, hw, keep_aspect_ratio=True)
    return M.to_grid(M.local_to_tanh(local, rois, hw), hw)


class PolarConv3x3(nn.Module):
    """3x3 convolution on a polar map: circular padding over angles, replicate over radii."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, :, -1:], x, x[:, :, :1]], dim=2)  # angle seam (written out: ONNX-friendly)
        x = F.pad(x, (1, 1, 0, 0), mode="replicate")
        return self.conv(x)


class CartesianHalf(nn.Module):
    """The second half of the split 3x3: conv + BN, in RoI Tanh space when ``tanh_space``.

    ``forward(x, grids)``: ``grids`` is ``(polar -> tanh points, tanh -> polar grid)`` for this
    map size (see :func:`polar_to_tanh_points`, :func:`tanh_to_polar_grid`), or None outside
    RoI Tanh space. As the original, batch norm runs in RoI Tanh space, before resampling back.
    """

    def __init__(self, cin: int, cout: int, stride: int, tanh_space: bool, padding_mode: str = "zeros"):
        super().__init__()
        self.tanh_space = tanh_space
        self.padding_mode = padding_mode
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, grids: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if not self.tanh_space:
            return self.bn(self.conv(x))
        assert grids is not None
        to_tanh, to_polar = grids
        cart = sample_polar(x, to_tanh.expand(x.shape[0], -1, -1, -1), padding_mode=self.padding_mode)
        cart = self.bn(self.conv(cart))
        grid = to_polar.expand(x.shape[0], -1, -1, -1).to(cart.dtype)
        return F.grid_sample(cart, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=False)


class HybridBottleneck(nn.Module):
    """Bottleneck (expansion 4) whose 3x3 conv is split into a polar and a Cartesian half."""

    def __init__(self, cin: int, planes: int, stride: int, hybrid: bool, padding_mode: str = "zeros"):
        super().__init__()
        width = planes // 2
        self.reduce_a = nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.reduce_b = nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.polar = nn.Sequential(PolarConv3x3(width, width, stride), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.hybrid = CartesianHalf(width, width, stride, tanh_space=hybrid, padding_mode=padding_mode)
        self.expand = nn.Sequential(nn.Conv2d(2 * width, planes * EXPANSION, 1, bias=False),
                                    nn.BatchNorm2d(planes * EXPANSION))
        self.downsample = None
        if stride != 1 or cin != planes * EXPANSION:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * EXPANSION, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes * EXPANSION))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, grids: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        b = F.relu(self.hybrid(self.reduce_b(x), grids))
        out = self.expand(torch.cat([self.polar(self.reduce_a(x)), b], dim=1))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class RTNet(nn.Module):
    """RTNet backbone: ``(N, 3, H, W)`` RoI Tanh-polar images (+ optional RoIs) -> ``(N, embedding_size)``.

    ``hybrid=False`` convolves both halves on the polar map in every block (an ablation).
    ``padding_mode`` is that of the polar <-> RoI Tanh resampling ("zeros" as the original).
    """

    takes_rois = True
    """``forward`` accepts the RoIs of the warp in front (facebone's FaceModel passes them)."""

    def __init__(self, *, embedding_size: int = 512, image_size: int = 112, layers: tuple[int, ...] = LAYERS_50,
                 hybrid: bool = True, dropout: float = 0.0, padding_mode: str = "zeros"):
        super().__init__()
        self.embedding_size = embedding_size
        self.input_size = (image_size, image_size)
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                                  nn.PReLU(64), nn.MaxPool2d(3, stride=2, padding=1))
        size = _down(_down(image_size))
        cin, stages, self.stage_sizes = 64, [], []
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            size = size if stride == 1 else _down(size)
            stage = [HybridBottleneck(cin, planes, stride, hybrid=False, padding_mode=padding_mode)]
            cin = planes * EXPANSION
            in_tanh = hybrid and i > 0  # the original's layer1 has no hybrid block
            stage += [HybridBottleneck(cin, planes, 1, hybrid=in_tanh, padding_mode=padding_mode)
                      for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            self.stage_sizes.append(size)
        self.stages = nn.Sequential(*stages)
        self.final_size = size
        for s in sorted(set(self.stage_sizes[1:])):
            self.register_buffer(f"to_tanh_{s}", polar_to_tanh_points((s, s)), persistent=False)
            self.register_buffer(f"to_polar_{s}", tanh_to_polar_grid((s, s)), persistent=False)
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
        nn.init.ones_(self.features.weight)  # fixed, as in the original (and iResNet)
        self.features.weight.requires_grad = False

    def hybrid_blocks(self) -> int:
        """How many blocks convolve half their channels in RoI Tanh space (10 for rtnet50)."""
        return sum(1 for m in self.modules() if isinstance(m, CartesianHalf) and m.tanh_space)

    def _grids(self, size: int, rois: torch.Tensor | None,
               cache: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        if rois is None:
            return getattr(self, f"to_tanh_{size}"), getattr(self, f"to_polar_{size}")
        if size not in cache:
            cache[size] = (polar_to_tanh_points((size, size), rois), tanh_to_polar_grid((size, size), rois))
        return cache[size]

    def forward(self, x: torch.Tensor, rois: torch.Tensor | None = None) -> torch.Tensor:
        """``rois``: ``(N, 4)`` or ``(N, 5)`` boxes the polar images were warped with (only their
        aspect ratios matter); None: a square RoI, as the fixed central box."""
        if rois is not None:
            rois = torch.as_tensor(rois, device=x.device).to(torch.float32).reshape(x.shape[0], -1)
        x = self.stem(x)
        cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for stage, size in zip(self.stages, self.stage_sizes):
            for block in stage:
                x = block(x, self._grids(size, rois, cache) if block.hybrid.tanh_space else None)
        x = self.dropout(torch.flatten(self.bn(x), 1))
        return self.features(self.fc(x))
