"""``torch.nn.Module`` warps of the RoI Tanh family, built on ``grid_sample``.

Coordinates and formulas are those of :mod:`facebone.plugins.warps.mapping`. Each warp
samples the source image at :func:`~facebone.plugins.warps.mapping.warped_to_source` of
its output pixel centres; ``restore`` samples the warped image at
:func:`~facebone.plugins.warps.mapping.source_to_warped` of the source pixel centres.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facebone.plugins.warps import mapping


def jitter_rois(rois: torch.Tensor, *, shift: float, scale: float, angle_deg: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample random RoIs around ``rois`` ``(N, 5)``: centre moved by up to ``shift`` x size,
    size multiplied by a log-uniform factor in ``[1/(1+scale), 1+scale]``, angle turned by up to
    ``angle_deg`` degrees (all uniform, independent per sample)."""
    n = rois.shape[0]
    u = torch.rand(n, 4, generator=generator, dtype=rois.dtype, device=rois.device) * 2 - 1
    centre = (rois[:, 0:2] + rois[:, 2:4]) / 2
    size = rois[:, 2:4] - rois[:, 0:2]
    centre = centre + u[:, 0:2] * shift * size
    size = size * torch.exp(u[:, 2:3] * math.log1p(scale))
    angle = rois[:, 4] + u[:, 3] * math.radians(angle_deg)
    return torch.cat([centre - size / 2, centre + size / 2, angle[:, None]], dim=1)


def sample_polar(polar: torch.Tensor, points: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample a polar map ``(N, C, H, W)`` (rows = angle, columns = radius) at polar pixel
    coordinates ``points`` ``(N, h, w, 2)``, wrapping around the angle seam (rows H-1 and 0
    are neighbours) and through the centre (left of column 0 lies column 0 half a turn on), so
    that neither leaves an artefact."""
    n, c, h, w = polar.shape
    col0 = polar[..., :1]
    k = h // 2
    opposite = torch.cat([col0[:, :, k:], col0[:, :, :k]], dim=2)  # row i <- row i + H/2
    if h % 2:
        opposite = 0.5 * (opposite + torch.cat([col0[:, :, k + 1:], col0[:, :, :k + 1]], dim=2))
    padded = torch.cat([opposite, polar, polar[..., -1:]], dim=3)
    padded = torch.cat([padded[:, :, -1:], padded, padded[:, :, :1]], dim=2)
    # padded index = pixel coordinate - 0.5 + 1; normalise over the padded size, corners aligned
    grid = torch.stack(((points[..., 0] + 0.5) * (2.0 / (w + 1)) - 1,
                        (points[..., 1] + 0.5) * (2.0 / (h + 1)) - 1), dim=-1)
    return F.grid_sample(padded, grid.to(padded.dtype), mode=mode, padding_mode="border", align_corners=True)


def _sample(images: torch.Tensor, grid: torch.Tensor, mode: str, padding_mode: str) -> torch.Tensor:
    low = images.dtype in (torch.float16, torch.bfloat16)
    src = images.float() if low else images
    out = F.grid_sample(src, grid.to(src.dtype), mode=mode, padding_mode=padding_mode, align_corners=False)
    return out.to(images.dtype) if low else out


def _hw(size: int | tuple[int, int] | None, default: tuple[int, int]) -> tuple[int, int]:
    if size is None:
        return default
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


class RoITanhFamilyWarp(nn.Module):
    """A warp of the RoI Tanh family (``space`` in ``mapping.SPACES``).

    ``forward(images, rois=None)`` returns ``(N, C, *output_size)``; ``restore(warped,
    rois=None, size=None)`` maps back to the source geometry (``size`` defaults to
    ``image_size``). ``rois`` is ``(N, 4)`` or ``(N, 5)`` (see ``mapping``); None means the
    fixed central box of side ``roi_ratio``. In training mode, non-zero jitter ranges draw a
    random RoI per sample around the given one.
    """

    def __init__(self, space: str, *, image_size: int | tuple[int, int], output_size: tuple[int, int] | None = None,
                 roi_ratio: float = 0.8, interpolation: str = "bilinear", padding_mode: str = "zeros",
                 keep_aspect_ratio: bool = True, jitter_shift: float = 0.0, jitter_scale: float = 0.0,
                 jitter_angle: float = 0.0):
        super().__init__()
        if space not in mapping.SPACES:
            raise ValueError(f"unknown warp space {space!r}; expected one of {mapping.SPACES}")
        self.space = space
        self.image_size = _hw(image_size, (0, 0))
        self.output_size = _hw(output_size, self.image_size)
        self.roi_ratio = roi_ratio
        self.interpolation = interpolation
        self.padding_mode = padding_mode
        self.keep_aspect_ratio = keep_aspect_ratio
        self.jitter = (jitter_shift, jitter_scale, jitter_angle)
        fixed = mapping.fixed_rois(1, self.image_size, roi_ratio)
        self.register_buffer("fixed_grid", self._grid(fixed, self.image_size), persistent=False)
        if space == "roi_tanh_circular":
            uv = mapping.pixel_centres(self.output_size)
            uv = uv * torch.tensor([2.0 / self.output_size[1], 2.0 / self.output_size[0]]) - 1
            inside = (uv.square().sum(-1) < 1.0).float()
            self.register_buffer("disc_mask", inside[None, None], persistent=False)
        else:
            self.disc_mask = None

    def extra_repr(self) -> str:
        return (f"space={self.space}, image_size={self.image_size}, output_size={self.output_size}, "
                f"roi_ratio={self.roi_ratio}, keep_aspect_ratio={self.keep_aspect_ratio}")

    # -- grids -----------------------------------------------------------------------------
    def _kw(self) -> dict:
        return {} if self.space == "roi_tanh" else {"keep_aspect_ratio": self.keep_aspect_ratio}

    def _grid(self, rois: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        """``(N, Ho, Wo, 2)`` grid_sample coordinates in the source image."""
        pts = mapping.pixel_centres(self.output_size, device=rois.device).expand(rois.shape[0], -1, -1, -1)
        src = mapping.warped_to_source(self.space, pts, rois, self.output_size, **self._kw())
        return mapping.to_grid(src, image_hw)

    def resolve_rois(self, rois: torch.Tensor | None, n: int, image_hw: tuple[int, int],
                     device: torch.device) -> torch.Tensor | None:
        """The ``(N, 5)`` float32 RoIs this call uses (jittered in training), or None for the
        cached fixed box."""
        jitter = self.training and any(j > 0 for j in self.jitter)
        if rois is None and not jitter and image_hw == self.image_size:
            return None
        rois = mapping.as_rois(rois, n, image_hw, self.roi_ratio, device=device)
        if jitter:
            rois = jitter_rois(rois, shift=self.jitter[0], scale=self.jitter[1], angle_deg=self.jitter[2])
        return rois

    # -- forward / inverse -----------------------------------------------------------------
    def forward(self, images: torch.Tensor, rois: torch.Tensor | None = None) -> torch.Tensor:
        n = images.shape[0]
        image_hw = (images.shape[-2], images.shape[-1])
        resolved = self.resolve_rois(rois, n, image_hw, images.device)
        if resolved is None:
            grid = self.fixed_grid.expand(n, -1, -1, -1)
        else:
            grid = self._grid(resolved, image_hw)
        out = _sample(images, grid, self.interpolation, self.padding_mode)
        if self.disc_mask is not None:
            out = out * self.disc_mask.to(out.dtype)
        return out

    def restore(self, warped: torch.Tensor, rois: torch.Tensor | None = None,
                size: int | tuple[int, int] | None = None) -> torch.Tensor:
        """Map warped images back to an image of ``size`` (default ``image_size``)."""
        n = warped.shape[0]
        hw = _hw(size, self.image_size)
        rois = mapping.as_rois(rois, n, hw, self.roi_ratio, device=warped.device)
        pts = mapping.pixel_centres(hw, device=warped.device).expand(n, -1, -1, -1)
        xy = mapping.source_to_warped(self.space, pts, rois, self.output_size, **self._kw())
        if self.space == "roi_tanh_polar":
            low = warped.dtype in (torch.float16, torch.bfloat16)
            out = sample_polar(warped.float() if low else warped, xy, self.interpolation)
            return out.to(warped.dtype) if low else out
        return _sample(warped, mapping.to_grid(xy, self.output_size), self.interpolation, "border")
