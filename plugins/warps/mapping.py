"""Pure coordinate mappings of the RoI Tanh family of warps (Lin et al., arXiv 2102.02717).

Conventions (used by every function here, by the warp modules and by ``rtnet50``):

- **Pixel centres at +0.5.** Points are ``(..., 2)`` tensors of ``(x, y)`` in *continuous
  pixel coordinates*: an image of size ``(H, W)`` spans ``[0, W] x [0, H]`` and pixel
  (row i, column j) has its centre at ``(j + 0.5, i + 0.5)`` (``grid_sample`` with
  ``align_corners=False``, PIL, torchvision's ``roi_align(aligned=True)``). RoIs given to
  facebone use this convention. Code that puts pixel centres on integers (OpenCV, the ibug
  ``roi_tanh_warping`` / ``face_embedding`` packages, detectors built on them) is converted at
  the edge with :func:`from_ibug_rois` / :func:`to_ibug_rois` (+/- 0.5 on the box).
- RoIs are ``(N, 5)``: box ``(x1, y1, x2, y2)`` in source pixels and a rotation ``angle`` in
  radians (the RoI's x axis turned towards +y; ibug's ``angular_offsets``). Points are
  ``(N, ..., 2)``; RoI ``n`` applies to ``points[n]``.
- *Local* coordinates are source pixels relative to the RoI centre, in the RoI's rotated
  frame: ``source = centre + R(angle) @ local``.

Warped spaces (``(h, w)`` is the RoI size, ``(Ho, Wo)`` the warped image size):

- ``roi_tanh``: ``u = 2x/Wo - 1``, ``v = 2y/Ho - 1``; ``local = ((w/2) artanh u, (h/2) artanh v)``.
- ``roi_tanh_polar``: rows are angles, columns radii, sampled as ibug's original does: the
  pixel of row i, column j (centre ``(j + 0.5, i + 0.5)``) is at angle ``theta = 2 pi i / Ho``
  and radius ``tanh(r) = j / Wo`` (column 0 is the RoI centre, row 0 points along the RoI's
  +x axis; no half-pixel shift on either axis). ``r`` is the distance in units of the RoI
  ellipse with semi-axes ``a = w/sqrt(pi)``, ``b = h/sqrt(pi)`` (same area as the box), i.e.
  ``r = |(local_x / a, local_y / b)|``. With ``keep_aspect_ratio`` theta is the geometric
  angle of ``local``; without, it is the ellipse's parametric angle (``local = r (a cos, b sin)``).
- ``roi_tanh_circular``: ``(u, v)`` as for roi_tanh, ``tanh(r) = |(u, v)|`` and the angle is
  ``atan2(v, u)``, with the same radial law and angle meaning as the polar warp. Outside the
  unit disc ``artanh`` is evaluated as the original does (``log((1 + x) / max(1 - x, 1e-9)) / 2``,
  about 10.4): such pixels map far outside the RoI, where the padding mode decides.
"""
from __future__ import annotations

import math

import torch

_EPS = 1e-7
_ATANH_FLOOR = 1e-9  # the original's clamp of 1 - x (and, symmetrically, of 1 + x)

FIXED_ROI_STYLES = ("exact", "ibug")
"""How the fixed central RoI is computed: "exact" (side ``roi_ratio`` x image side) or "ibug"
(the original's integer box, e.g. (11, 11, 100, 100) for 112 px and 0.8, an 89 px side)."""


# -- RoIs ------------------------------------------------------------------------------------

def from_ibug_rois(rois: torch.Tensor) -> torch.Tensor:
    """RoIs with pixel centres on integers (ibug, OpenCV) -> facebone's (centres at +0.5).

    Shifts the box ``(x1, y1, x2, y2)`` by +0.5; an angle column (if any) is unchanged.
    """
    rois = torch.as_tensor(rois)
    out = rois.clone() if rois.is_floating_point() else rois.to(torch.float32)  # ibug RoIs are often ints
    out[..., 0:4] += 0.5
    return out


def to_ibug_rois(rois: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`from_ibug_rois`: facebone RoIs -> pixel centres on integers."""
    rois = torch.as_tensor(rois)
    out = rois.clone() if rois.is_floating_point() else rois.to(torch.float32)
    out[..., 0:4] -= 0.5
    return out


def ibug_fixed_box(image_hw: tuple[int, int], roi_ratio: float) -> tuple[float, float, float, float]:
    """The original's fixed RoI in facebone coordinates.

    ibug ``face_embedding`` truncates the side to ``int(ratio * size)`` and each corner to an
    integer: ``(11, 11, 100, 100)`` for 112 px and 0.8, in its integer-centre convention,
    i.e. ``(11.5, 11.5, 100.5, 100.5)`` here.
    """
    h, w = image_hw
    side_h, side_w = int(h * roi_ratio), int(w * roi_ratio)
    box = (int(0.5 * w - 0.5 * side_w), int(0.5 * h - 0.5 * side_h),
           int(0.5 * w + 0.5 * side_w), int(0.5 * h + 0.5 * side_h))
    return tuple(float(v) + 0.5 for v in box)  # type: ignore[return-value]


def fixed_rois(n: int, image_hw: tuple[int, int], roi_ratio: float, *, style: str = "exact",
               dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """``(n, 5)`` central boxes covering ``roi_ratio`` of each side of an ``image_hw`` image.

    ``style`` "exact" is the box of side ``roi_ratio`` x side; "ibug" the original's truncated
    integer box (:func:`ibug_fixed_box`), for models trained with it.
    """
    h, w = image_hw
    if style == "ibug":
        x1, y1, x2, y2 = ibug_fixed_box(image_hw, roi_ratio)
    elif style == "exact":
        x1, y1, x2, y2 = w * (1 - roi_ratio) / 2, h * (1 - roi_ratio) / 2, w * (1 + roi_ratio) / 2, h * (1 + roi_ratio) / 2
    else:
        raise ValueError(f"unknown fixed RoI style {style!r}; expected one of {FIXED_ROI_STYLES}")
    box = torch.tensor([x1, y1, x2, y2, 0.0], dtype=dtype, device=device)
    return box.expand(n, 5).clone()


def as_rois(rois: torch.Tensor | None, n: int, image_hw: tuple[int, int], roi_ratio: float, *,
            style: str = "exact", dtype: torch.dtype = torch.float32,
            device: torch.device | str | None = None) -> torch.Tensor:
    """Normalise RoIs to ``(n, 5)``: None -> the fixed central box; ``(n, 4)`` -> angle 0."""
    if rois is None:
        return fixed_rois(n, image_hw, roi_ratio, style=style, dtype=dtype, device=device)
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
    """``artanh`` as the original computes it: ``log((1 + u) / max(1 - u, 1e-9)) / 2``.

    Finite (about +/-10.4) at and beyond +/-1, where the circular warp's corners lie; the
    same formula also exports to ONNX, which has no ``atanh`` exporter.
    """
    return 0.5 * torch.log((1 + u).clamp(min=_ATANH_FLOOR) / (1 - u).clamp(min=_ATANH_FLOOR))


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
    """roi_tanh_polar warped pixels -> local: ``theta = 2 pi (y - 1/2) / Ho``, ``r = artanh((x - 1/2) / Wo)``
    (row i at angle ``2 pi i / Ho``, column j at radius ``artanh(j / Wo)``, as the original)."""
    ho, wo = out_hw
    theta = (xy[..., 1] - 0.5) * (2 * math.pi / ho)
    r = _atanh((xy[..., 0] - 0.5) / wo)
    return _radial_to_local(r, torch.cos(theta), torch.sin(theta), _ellipse_axes(rois, xy), keep_aspect_ratio)


def local_to_polar(local: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int], *,
                   keep_aspect_ratio: bool = True) -> torch.Tensor:
    """Inverse of :func:`polar_to_local`; ``y`` comes back in ``[1/2, Ho + 1/2)`` (angle modulo 2 pi)."""
    ho, wo = out_hw
    r, theta = _local_to_radial(local, _ellipse_axes(rois, local), keep_aspect_ratio)
    y = torch.remainder(theta * (ho / (2 * math.pi)), float(ho)) + 0.5
    return torch.stack((torch.tanh(r) * wo + 0.5, y), dim=-1)


def circular_to_local(xy: torch.Tensor, rois: torch.Tensor, out_hw: tuple[int, int], *,
                      keep_aspect_ratio: bool = True) -> torch.Tensor:
    """roi_tanh_circular warped pixels -> local: ``tanh(r) = |(u, v)|`` along ``atan2(v, u)``.

    Points outside the unit disc get the original's finite ``artanh`` (about 10.4 RoI radii).
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
