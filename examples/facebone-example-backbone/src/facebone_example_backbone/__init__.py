"""nanoconvnext: a small ConvNeXt-style face backbone, registered as a facebone plugin.

Block (Liu et al., "A ConvNet for the 2020s", CVPR 2022): depthwise 7x7 -> LayerNorm ->
Linear(4C) -> GELU -> Linear(C) -> layer scale, added to the input. Stages are separated by
LayerNorm + a 2x2 stride-2 convolution; the stem is a 2x2 stride-2 patchify convolution (face
inputs are small, so the stem keeps more resolution than ConvNeXt's 4x4).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import facebone
from facebone import option

FACEBONE_PLUGIN_API = "1.0"


@dataclasses.dataclass(frozen=True, kw_only=True)
class NanoConvNeXtOptions:
    depths: tuple[int, ...] = option((1, 1, 2, 1), "blocks per stage")
    dims: tuple[int, ...] = option((32, 64, 128, 256), "channels per stage")
    layer_scale: float = option(1e-2, "initial value of the per-channel layer scale")

    def __post_init__(self) -> None:
        if len(self.depths) != len(self.dims) or not self.depths:
            raise ValueError(f"depths and dims need the same (non-zero) length, got {len(self.depths)} and {len(self.dims)}")
        if any(d <= 0 for d in (*self.depths, *self.dims)):
            raise ValueError("depths and dims must be positive")


def build_nanoconvnext(options: NanoConvNeXtOptions, *, embedding_size: int, image_size: int, **runtime: Any) -> Any:
    """(N, 3, H, W) RGB in [-1, 1] -> raw (N, embedding_size)."""
    import torch
    from torch import nn

    class ChannelsLastNorm(nn.LayerNorm):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W): normalise over C
            return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class Block(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
            self.gamma = nn.Parameter(torch.full((dim,), options.layer_scale))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.dwconv(x).permute(0, 2, 3, 1)
            y = self.gamma * self.mlp(self.norm(y))
            return x + y.permute(0, 3, 1, 2)

    class NanoConvNeXt(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding_size, self.input_size = embedding_size, (image_size, image_size)
            layers: list[nn.Module] = [nn.Conv2d(3, options.dims[0], 2, stride=2), ChannelsLastNorm(options.dims[0])]
            for i, (depth, dim) in enumerate(zip(options.depths, options.dims)):
                if i > 0:
                    layers += [ChannelsLastNorm(options.dims[i - 1]), nn.Conv2d(options.dims[i - 1], dim, 2, stride=2)]
                layers += [Block(dim) for _ in range(depth)]
            self.stages = nn.Sequential(*layers)
            self.norm = nn.LayerNorm(options.dims[-1])
            self.fc = nn.Linear(options.dims[-1], embedding_size, bias=False)
            self.features = nn.BatchNorm1d(embedding_size)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pooled = self.stages(x).mean(dim=(2, 3))
            return self.features(self.fc(self.norm(pooled)))

    return NanoConvNeXt()


@facebone.hookimpl
def facebone_backbones(registry: Any) -> None:
    registry.add("nanoconvnext", build_nanoconvnext, options=NanoConvNeXtOptions,
                 summary="nanoconvnext: a small ConvNeXt-style face backbone (example third-party plugin)")
