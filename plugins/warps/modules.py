"""``torch.nn.Module`` warps of the RoI Tanh family, built on ``grid_sample``.

Coordinates and formulas are those of :mod:`facebone.plugins.warps.mapping`. Each warp
samples the source image at :func:`~facebone.plugins.warps.mapping.warped_to_source` of
its output pixel centres; ``restore`` samples the warped image at
:func:`~facebone.plugins.warps.mapping.source_to_warped` of the source pixel centres. The
results equal those of ibug's ``roi_tanh_warping`` (the code RTNet and ``face_embedding``
use) on the same RoIs converted with ``mapping.from_ibug_rois``, images in [-1, 1] standing
for the original's [0, 1] ones.
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


BLACK = -1.0
"""What ``padding_mode = "zeros"`` fills with: black in the network's [-1, 1] range. The
original warps [0, 1] images with zero padding and normalises afterwards, so its padded
pixels are -1 too."""


def sample_polar(polar: torch.Tensor, points: torch.Tensor, mode: str = "bilinear",
                 padding_mode: str = "zeros") -> torch.Tensor:
    """Sample a polar map ``(N, C, H, W)`` (rows = angle, columns = radius) at polar pixel
    coordinates ``points`` ``(N, h, w, 2)`` (see :mod:`~facebone.plugins.warps.mapping`).

    As the original's restore: rows wrap around the angle seam (rows H-1 and 0 are
    neighbours); column 0 is the RoI centre, so nothing lies left of it; past the last radius
    column ``padding_mode`` applies (``zeros`` fades to 0, ``border`` repeats the column).
    Feature maps are sampled as they are: the black fill of image warps is the caller's.
    """
    h, w = polar.shape[-2:]
    padded = torch.cat([polar[:, :, -1:], polar, polar[:, :, :1]], dim=2)  # written out: ONNX-friendly
    padded = torch.cat([padded[..., :1], padded], dim=3)
    # padded index = (pixel coordinate - 0.5) + 1; normalised over the padded size, corners aligned
    grid = torch.stack(((points[..., 0] + 0.5) * (2.0 / w) - 1,
                        (points[..., 1] + 0.5) * (2.0 / (h + 1)) - 1), dim=-1)
    return F.grid_sample(padded, grid.to(padded.dtype), mode=mode, padding_mode=padding_mode, align_corners=True)


def _in_float(fn, images: torch.Tensor, padding_mode: str) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """``fn(x)`` on float32 (half precision grids are too coarse), padding with black under "zeros"."""
    low = images.dtype in (torch.float16, torch.bfloat16)
    src = images.float() if low else images
    out = fn(src - BLACK) + BLACK if padding_mode == "zeros" else fn(src)
    return out.to(images.dtype) if low else out


def _sample(images: torch.Tensor, grid: torch.Tensor, mode: str, padding_mode: str) -> torch.Tensor:
    return _in_float(lambda x: F.grid_sample(x, grid.to(x.dtype), mode=mode, padding_mode=padding_mode,
                                             align_corners=False), images, padding_mode)


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
    ``image_size``). ``rois`` is ``(N, 4)`` or ``(N, 5)`` in facebone's pixel convention (see
    ``mapping``); None means the fixed central box of side ``roi_ratio`` (``fixed_roi`` "exact")
    or the original's truncated integer box ("ibug"). ``padding_mode`` applies to the warp and
    to restore: "zeros" pads with black (-1), as the original does on its [0, 1] images; the
    circular warp's corners (outside the unit disc) follow it too. In training mode, non-zero
    jitter ranges draw a random RoI per sample around the given one.
    """

    def __init__(self, space: str, *, image_size: int | tuple[int, int], output_size: tuple[int, int] | None = None,
                 roi_ratio: float = 0.8, interpolation: str = "bilinear", padding_mode: str = "zeros",
                 keep_aspect_ratio: bool = True, fixed_roi: str = "exact", jitter_shift: float = 0.0,
                 jitter_scale: float = 0.0, jitter_angle: float = 0.0):
        super().__init__()
        if space not in mapping.SPACES:
            raise ValueError(f"unknown warp space {space!r}; expected one of {mapping.SPACES}")
        self.space = space
        self.image_size = _hw(image_size, (0, 0))
        self.output_size = _hw(output_size, self.image_size)
        self.roi_ratio = roi_ratio
        self.fixed_roi = fixed_roi
        self.interpolation = interpolation
        self.padding_mode = padding_mode
        self.keep_aspect_ratio = keep_aspect_ratio
        self.jitter = (jitter_shift, jitter_scale, jitter_angle)
        fixed = mapping.fixed_rois(1, self.image_size, roi_ratio, style=fixed_roi)
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
                f"roi_ratio={self.roi_ratio}, fixed_roi={self.fixed_roi}, padding_mode={self.padding_mode}, "
                f"keep_aspect_ratio={self.keep_aspect_ratio}")

    # -- grids -----------------------------------------------------------------------------
    def _kw(self) -> dict:
        return {} if self.space == "roi_tanh" else {"keep_aspect_ratio": self.keep_aspect_ratio}

    def _grid(self, rois: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        """``(N, Ho, Wo, 2)`` grid_sample coordinates in the source image."""
        pts = mapping.pixel_centres(self.output_size, device=rois.device).expand(rois.shape[0], -1, -1, -1)
        src = mapping.warped_to_source(self.space, pts, rois, self.output_size, **self._kw())
        return mapping.to_grid(src, image_hw)

    def _rois(self, rois: torch.Tensor | None, n: int, hw: tuple[int, int], device: torch.device) -> torch.Tensor:
        return mapping.as_rois(rois, n, hw, self.roi_ratio, style=self.fixed_roi, device=device)

    def resolve_rois(self, rois: torch.Tensor | None, n: int, image_hw: tuple[int, int],
                     device: torch.device) -> torch.Tensor | None:
        """The ``(N, 5)`` float32 RoIs this call uses (jittered in training), or None for the
        cached fixed box."""
        jitter = self.training and any(j > 0 for j in self.jitter)
        if rois is None and not jitter and image_hw == self.image_size:
            return None
        rois = self._rois(rois, n, image_hw, device)
        if jitter:
            rois = jitter_rois(rois, shift=self.jitter[0], scale=self.jitter[1], angle_deg=self.jitter[2])
        return rois

    # -- forward / inverse -----------------------------------------------------------------
    def forward_with_rois(self, images: torch.Tensor,
                          rois: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The warped images and the ``(N, 5)`` RoIs used (jittered in training), or None when
        the fixed central box was used. A backbone that works in the RoI's frame (rtnet50) gets
        these."""
        n = images.shape[0]
        image_hw = (images.shape[-2], images.shape[-1])
        resolved = self.resolve_rois(rois, n, image_hw, images.device)
        if resolved is None:
            grid = self.fixed_grid.expand(n, -1, -1, -1)
        else:
            grid = self._grid(resolved, image_hw)
        out = _sample(images, grid, self.interpolation, self.padding_mode)
        if self.disc_mask is not None and self.padding_mode == "zeros":  # corners: black, as the original
            mask = self.disc_mask.to(out.dtype)
            out = out * mask + BLACK * (1 - mask)
        return out, resolved

    def forward(self, images: torch.Tensor, rois: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_rois(images, rois)[0]

    def restore(self, warped: torch.Tensor, rois: torch.Tensor | None = None,
                size: int | tuple[int, int] | None = None, *, padding_mode: str | None = None) -> torch.Tensor:
        """Map warped images back to an image of ``size`` (default ``image_size``); ``padding_mode``
        defaults to the warp's."""
        n = warped.shape[0]
        hw = _hw(size, self.image_size)
        pad = padding_mode or self.padding_mode
        rois = self._rois(rois, n, hw, warped.device)
        pts = mapping.pixel_centres(hw, device=warped.device).expand(n, -1, -1, -1)
        xy = mapping.source_to_warped(self.space, pts, rois, self.output_size, **self._kw())
        if self.space == "roi_tanh_polar":
            return _in_float(lambda x: sample_polar(x, xy, self.interpolation, pad), warped, pad)
        return _sample(warped, mapping.to_grid(xy, self.output_size), self.interpolation, pad)
