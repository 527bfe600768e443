"""Pure coordinate mappings of the RoI Tanh family of warps (Lin et al., arXiv 2102.02717).

Conventions (used by every function here and by the warp modules):

- Points are ``(..., 2)`` tensors of ``(x, y)`` in *continuous pixel coordinates*: an image
  of size ``(H, W)`` spans ``[0, W] x [0, H]`` and pixel (row i, column j) has its centre at
  ``(j + 0.5, i + 0.5)`` (``grid_sample`` with ``align_corners=False``).
- RoIs are ``(N, 5)``: box ``(x1, y1, x2, y2)`` in source pixels and a rotation ``angle`` in
  radians (the RoI's x axis turned towards +y). Points are ``(N, ..., 2)``; RoI ``n`` applies to
  ``points[n]``.
- *Local* coordinates are source pixels relative to the RoI centre, in the RoI's rotated
  frame: ``source = centre + R(angle) @ local``.

Warped spaces (``(h, w)`` is the RoI size, ``(Ho, Wo)`` the warped image size):

- ``roi_tanh``: ``u = 2x/Wo - 1``, ``v = 2y/Ho - 1``; ``local = ((w/2) artanh u, (h/2) artanh v)``.
- ``roi_tanh_polar``: rows are angles ``theta = 2 pi y / Ho``, columns radii
  ``tanh(r) = x / Wo`` where ``r`` is the distance in units of the RoI ellipse with semi-axes
  ``a = w/sqrt(pi)``, ``b = h/sqrt(pi)`` (same area as the box), i.e.
  ``r = |(local_x / a, local_y / b)|``. With ``keep_aspect_ratio`` theta is the geometric angle
  of ``local``; without, it is the ellipse's parametric angle (``local = r (a cos, b sin)``).
- ``roi_tanh_circular``: ``(u, v)`` as for roi_tanh, ``tanh(r) = |(u, v)|`` and the angle is
  ``atan2(v, u)``, with the same radial law and angle meaning as the polar warp.
"""
from __future__ import annotations

import math

import torch

_EPS = 1e-7
_MAX_TANH = 1.0 - 1e-6  # float32 keeps 1 - 1e-6 distinct from 1


# -- RoIs ------------------------------------------------------------------------------------

def fixed_rois(n: int, image_hw: tuple[int, int], roi_ratio: float, *,
               dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """``(n, 5)`` central boxes covering ``roi_ratio`` of each side of an ``image_hw`` image."""
    h, w = image_hw
    box = torch.tensor([w * (1 - roi_ratio) / 2, h * (1 - roi_ratio) / 2,
                        w * (1 + roi_ratio) / 2, h * (1 + roi_ratio) / 2, 0.0], dtype=dtype, device=device)
    return box.expand(n, 5).clone()


def as_rois(rois: torch.Tensor | None, n: int, image_hw: tuple[int, int], roi_ratio: float, *,
            dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """Normalise RoIs to ``(n, 5)``: None -> the fixed central box; ``(n, 4)`` -> angle 0."""
    if rois is None:
        return fixed_rois(n, image_hw, roi_ratio, dtype=dtype, device=device)
    rois = torch.as_tensor(rois, dtype=dtype, device=device)
    if rois.dim() == 1:
        rois = rois.expand(n, rois.shape[0])
    if rois.dim() != 2 or rois.shape[0] != n or rois.shape[1] not in (4, 5):
        from facebone.errors import DataError

        raise DataError(f"rois must be (N, 4) boxes (x1, y1, x2, y2) or (N, 5) with an angle, N = {n}; "
                        f"got shape {tuple(rois.shape)}")
    if rois.shape[1] == 4:
        rois = torch.cat([rois, rois.new_zeros(n, 1)], dim=1)
    return rois


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape ``(N,)`` or ``(N, 2)`` so it broadcasts against points ``(N, ..., 2)``."""
    middle = [1] * (like.dim() - 2)
    return t.reshape(t.shape[0], *middle, *t.shape[1:]) if t.dim() > 1 else t.reshape(t.shape[0], *middle)


def _roi_parts(rois: torch.Tensor, like: torch.Tensor):  # type: ignore[no-untyped-def]
    centre = _per_sample((rois[:, 0:2] + rois[:, 2:4]) / 2, like)
    size = _per_sample(rois[:, 2:4] - rois[:, 0:2], like)
    angle = _per_sample(rois[:, 4], like)
    return centre, size, angle


def local_to_source(local: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
    """RoI-local points -> source pixels: ``centre + R(angle) @ local``."""
    centre, _, angle = _roi_parts(rois, local)
    c, s = torch.cos(angle), torch.sin(angle)
    x, y = local[..., 0], local[..., 1]
    return torch.stack((c * x - s * y, s * x + c * y), dim=-1) + centre


def source_to_local(points: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
    """Source pixels -> RoI-local points: ``R(-angle) @ (points - centre)``."""
    centre, _, angle = _roi_parts(rois, points)
    c, s = torch.cos(angle), torch.sin(angle)
    d = points - centre
    x, y = d[..., 0], d[..., 1]
    return torch.stack((c * x + s * y, -s * x + c * y), dim=-1)


# -- per-warp: warped pixel coordinates <-> local coordinates -------------------------------

def _atanh(u: torch.Tensor) -> torch.Tensor:
    u = u.clamp(-_MAX_TANH, _MAX_TANH)
    if torch.onnx.is_in_onnx_export():  # ONNX has no exporter for aten::atanh
        return 0.5 * torch.log((1 + u) / (1 - u))
    return torch.atanh(u)


def _ellipse_axes(rois: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Semi-axes ``(a, b) = (w, h) / sqrt(pi)`` broadcastable against ``like``."""
    return _per_sample(rois[:, 2:4] - rois[:, 0:2], like) / math.sqrt(math.pi)


def _radial_to_local(r: torch.Tensor, cos_t: torch.Tensor, sin_t: torch.Tensor, axes: torch.Tensor,
                     keep_aspect_ratio: bool) -> torch.Tensor:
    """Elliptic radius ``r`` along angle ``theta`` -> local point (see module docstring)."""
    a, b = axes[..., 0], axes[..., 1]
    if keep_aspect_ratio:  # geometric angle: scale the unit direction to elliptic radius r
        scale = r / torch.sqrt((cos_t / a) ** 2 + (sin_t / b) ** 2)
        return torch.stack((scale * cos_t, scale * sin_t), dim=-1)
    return torch.stack((a * r * cos_t, b * r * sin_t), dim=-1)


def _local_to_radial(local: torch.Tensor, axes: torch.Tensor, keep_aspect_ratio: bool):  # type: ignore[no-untyped-def]
    """Local point -> (elliptic radius r, angle theta in (-pi, pi])."""
    a, b = axes[..., 0], axes[..., 1]
    ex, ey = local[..., 0] / a, local[..., 1] / b
    r = torch.sqrt(ex * ex + ey * ey)
    theta = torch.atan2(local[..., 1], local[..., 0]) if keep_aspect_ratio else torch.atan2(ey, ex)
    return r, theta


def tanh_to_local(xy: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """roi_tanh warped pixels -> local: ``(w/2) artanh(2x/Wo - 1)``, ``(h/2) artanh(2y/Ho - 1)``."""
    ho, wo = out_hw
    half = _per_sample(rois[:, 2:4] - rois[:, 0:2], xy) / 2
    u = 2 * xy[..., 0] / wo - 1
    v = 2 * xy[..., 1] / ho - 1
    return torch.stack((half[..., 0] * _atanh(u), half[..., 1] * _atanh(v)), dim=-1)


def local_to_tanh(local: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`tanh_to_local`."""
    ho, wo = out_hw
    half = _per_sample(rois[:, 2:4] - rois[:, 0:2], local) / 2
    u = torch.tanh(local[..., 0] / half[..., 0])
    v = torch.tanh(local[..., 1] / half[..., 1])
    return torch.stack(((u + 1) * wo / 2, (v + 1) * ho / 2), dim=-1)


def polar_to_local(xy: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int], *,
                   keep_aspect_ratio: bool = True) -> torch.Tensor:
    """roi_tanh_polar warped pixels -> local: ``theta = 2 pi y / Ho``, ``r = artanh(x / Wo)``."""
    ho, wo = out_hw
    theta = xy[..., 1] * (2 * math.pi / ho)
    r = _atanh(xy[..., 0] / wo)
    return _radial_to_local(r, torch.cos(theta), torch.sin(theta), _ellipse_axes(rois, xy), keep_aspect_ratio)


def local_to_polar(local: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int], *,
                   keep_aspect_ratio: bool = True) -> torch.Tensor:
    """Inverse of :func:`polar_to_local`; rows come back in ``[0, Ho)`` (angle modulo 2 pi)."""
    ho, wo = out_hw
    r, theta = _local_to_radial(local, _ellipse_axes(rois, local), keep_aspect_ratio)
    y = torch.remainder(theta * (ho / (2 * math.pi)), float(ho))
    return torch.stack((torch.tanh(r) * wo, y), dim=-1)


def circular_to_local(xy: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int], *,
                      keep_aspect_ratio: bool = True) -> torch.Tensor:
    """roi_tanh_circular warped pixels -> local: ``tanh(r) = |(u, v)|`` along ``atan2(v, u)``.

    Points outside the unit disc are clamped to just inside it (the warp masks them out).
    """
    ho, wo = out_hw
    u = 2 * xy[..., 0] / wo - 1
    v = 2 * xy[..., 1] / ho - 1
    rho = torch.sqrt(u * u + v * v)
    safe = rho.clamp(min=_EPS)
    r = _atanh(rho)
    return _radial_to_local(r, u / safe, v / safe, _ellipse_axes(rois, xy), keep_aspect_ratio)


def local_to_circular(local: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int], *,
                      keep_aspect_ratio: bool = True) -> torch.Tensor:
    """Inverse of :func:`circular_to_local`."""
    ho, wo = out_hw
    r, theta = _local_to_radial(local, _ellipse_axes(rois, local), keep_aspect_ratio)
    rho = torch.tanh(r)
    return torch.stack(((rho * torch.cos(theta) + 1) * wo / 2, (rho * torch.sin(theta) + 1) * ho / 2), dim=-1)


# -- composites --------------------------------------------------------------------------------

_TO_LOCAL = {"roi_tanh": tanh_to_local, "roi_tanh_polar": polar_to_local, "roi_tanh_circular": circular_to_local}
_FROM_LOCAL = {"roi_tanh": local_to_tanh, "roi_tanh_polar": local_to_polar, "roi_tanh_circular": local_to_circular}
SPACES = tuple(_TO_LOCAL)
"""Names of the warped spaces handled here."""


def warped_to_source(space: str, xy: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int], *,
                     keep_aspect_ratio: bool = True) -> torch.Tensor:
    """Warped-image pixels of ``space`` -> source-image pixels (what the warp samples)."""
    kw = {} if space == "roi_tanh" else {"keep_aspect_ratio": keep_aspect_ratio}
    return local_to_source(_TO_LOCAL[space](xy, rois, out_hw, **kw), rois)


def source_to_warped(space: str, points: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int], *,
                     keep_aspect_ratio: bool = True) -> torch.Tensor:
    """Source-image pixels -> warped-image pixels of ``space`` (what ``restore`` samples)."""
    kw = {} if space == "roi_tanh" else {"keep_aspect_ratio": keep_aspect_ratio}
    return _FROM_LOCAL[space](source_to_local(points, rois), rois, out_hw, **kw)


def pixel_centres(hw: tuple[int, int], *, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """``(H, W, 2)`` ``(x, y)`` of every pixel centre of an ``hw`` image."""
    h, w = hw
    ys = torch.arange(h, dtype=dtype, device=device) + 0.5
    xs = torch.arange(w, dtype=dtype, device=device) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)


def to_grid(points: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Pixel coordinates -> ``grid_sample`` coordinates in [-1, 1] (``align_corners=False``)."""
    h, w = hw
    return torch.stack((points[..., 0] * (2.0 / w) - 1, points[..., 1] * (2.0 / h) - 1), dim=-1)
