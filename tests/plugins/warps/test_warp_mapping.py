"""The pure coordinate mappings, against the issue's formulas written out here in float64 NumPy."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facebone.plugins.warps import mapping as M

OUT = (24, 20)  # (H, W) of the warped image: non-square on purpose


def random_rois(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n, 2, generator=g) * 60 + 26
    size = torch.rand(n, 2, generator=g) * 60 + 30
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.pi
    return torch.cat([centre - size / 2, centre + size / 2, angle[:, None]], dim=1)


def _rotate_to_source(local: np.ndarray, roi: np.ndarray) -> np.ndarray:
    cx, cy = (roi[0] + roi[2]) / 2, (roi[1] + roi[3]) / 2
    c, s = math.cos(roi[4]), math.sin(roi[4])
    return np.stack([cx + c * local[..., 0] - s * local[..., 1], cy + s * local[..., 0] + c * local[..., 1]], -1)


def expected_source(space: str, roi: np.ndarray, keep: bool) -> np.ndarray:
    """Source pixel of every warped pixel centre, written straight from the issue's formulas."""
    ho, wo = OUT
    w, h = roi[2] - roi[0], roi[3] - roi[1]
    i, j = np.meshgrid(np.arange(ho, dtype=np.float64), np.arange(wo, dtype=np.float64), indexing="ij")
    u, v = (2 * j + 1) / wo - 1, (2 * i + 1) / ho - 1  # in (-1, 1) at pixel centres
    a, b = w / math.sqrt(math.pi), h / math.sqrt(math.pi)  # ellipse of the box's area
    if space == "roi_tanh":
        local = np.stack([w / 2 * np.arctanh(u), h / 2 * np.arctanh(v)], -1)
    else:
        if space == "roi_tanh_polar":  # as ibug's original: no half-pixel shift on either axis
            theta = 2 * math.pi * i / ho  # rows: angles over [0, 2 pi), row 0 along +x
            radius = np.arctanh(j / wo)  # columns: tanh-compressed radius, column 0 the centre
        else:
            theta = np.arctan2(v, u)
            radius = np.arctanh(np.minimum(np.hypot(u, v), 1 - 1e-6))
        if keep:  # radius in units of the ellipse's own radius along the geometric angle
            rho = radius * a * b / np.sqrt(b ** 2 * np.cos(theta) ** 2 + a ** 2 * np.sin(theta) ** 2)
            local = np.stack([rho * np.cos(theta), rho * np.sin(theta)], -1)
        else:
            local = np.stack([a * radius * np.cos(theta), b * radius * np.sin(theta)], -1)
    return _rotate_to_source(local, roi)


@pytest.mark.parametrize("space", M.SPACES)
@pytest.mark.parametrize("keep", [True, False])
def test_warped_to_source_matches_formulas(space: str, keep: bool) -> None:
    rois = random_rois(4, seed=1)
    pts = M.pixel_centres(OUT).expand(4, -1, -1, -1)
    got = M.warped_to_source(space, pts, rois, OUT, keep_aspect_ratio=keep).numpy()
    for n in range(4):
        want = expected_source(space, rois[n].double().numpy(), keep)
        mask = np.ones(OUT, bool)
        if space == "roi_tanh_circular":  # inside the disc only
            i, j = np.meshgrid(np.arange(OUT[0]), np.arange(OUT[1]), indexing="ij")
            mask = np.hypot((2 * j + 1) / OUT[1] - 1, (2 * i + 1) / OUT[0] - 1) < 0.95
        np.testing.assert_allclose(got[n][mask], want[mask], rtol=1e-5, atol=2e-3)


def test_keep_aspect_ratio_changes_polar_but_not_for_circles() -> None:
    square = torch.tensor([[10.0, 10.0, 60.0, 60.0, 0.4]])
    wide = torch.tensor([[0.0, 20.0, 80.0, 50.0, 0.0]])
    pts = M.pixel_centres(OUT)[None]
    for rois, same in ((square, True), (wide, False)):
        a = M.warped_to_source("roi_tanh_polar", pts, rois, OUT, keep_aspect_ratio=True)
        b = M.warped_to_source("roi_tanh_polar", pts, rois, OUT, keep_aspect_ratio=False)
        assert torch.allclose(a, b, atol=1e-4) is same


def _inside_box_points(rois: torch.Tensor, count: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    size = rois[:, 2:4] - rois[:, 0:2]
    local = (torch.rand(rois.shape[0], count, 2, generator=g) - 0.5) * size[:, None, :]
    return M.local_to_source(local, rois)


@pytest.mark.parametrize("space", M.SPACES)
@pytest.mark.parametrize("keep", [True, False])
def test_round_trip_source_warped_source(space: str, keep: bool) -> None:
    """Restore mapping after warp mapping: <= 1e-4 px in float32, random RoIs and angles, batched."""
    rois = random_rois(8, seed=2)
    pts = _inside_box_points(rois, 2000)
    warped = M.source_to_warped(space, pts, rois, (112, 112), keep_aspect_ratio=keep)
    back = M.warped_to_source(space, warped, rois, (112, 112), keep_aspect_ratio=keep)
    assert back.dtype == torch.float32
    assert (back - pts).norm(dim=-1).max().item() <= 1e-4


@pytest.mark.parametrize("space", M.SPACES)
@pytest.mark.parametrize("keep", [True, False])
def test_round_trip_warped_source_warped(space: str, keep: bool) -> None:
    """Every warped pixel centre comes back within 1e-4 px (angles compared modulo 2 pi).

    The polar map's column 0 is the RoI centre itself (every angle maps to that one point, so
    its angle cannot come back); next to it float32 rounding of the source point (~1e-5 px) is
    a large angle error, so columns 1-2 get a looser bound that still proves the mapping there.
    """
    rois = random_rois(8, seed=4)
    pts = M.pixel_centres((112, 112)).expand(8, -1, -1, -1)
    src = M.warped_to_source(space, pts, rois, (112, 112), keep_aspect_ratio=keep)
    back = M.source_to_warped(space, src, rois, (112, 112), keep_aspect_ratio=keep)
    diff = back - pts
    if space == "roi_tanh_polar":
        diff[..., 1] = torch.remainder(diff[..., 1] + 56, 112) - 56
    err = diff.norm(dim=-1)
    if space == "roi_tanh_circular":
        uv = pts / 56 - 1
        err = err[(uv.square().sum(-1) < 1).expand_as(err)]
    elif space == "roi_tanh_polar":
        assert diff[..., 0, 0].abs().max().item() <= 1e-4  # the centre column keeps its radius
        assert err[..., 1:3].max().item() <= 1e-3
        err = err[..., 3:]
    assert err.max().item() <= 1e-4


def test_polar_rows_are_angles_and_columns_radii() -> None:
    """Row i (centre y = i + 1/2) lies at angle 2 pi i / H from the centre, column j at radius
    artanh(j / W); column 0 is the centre itself."""
    rois = torch.tensor([[20.0, 20.0, 80.0, 80.0, 0.0]])
    pts = torch.tensor([[[10.5, 0.5], [10.5, 6.5], [10.5, 12.5], [15.5, 12.5]]])  # (x=radius, y=angle)
    src = M.warped_to_source("roi_tanh_polar", pts, rois, (24, 20))
    d = src[0] - 50.0
    angles = torch.atan2(d[:, 1], d[:, 0])
    angles = torch.remainder(angles, 2 * math.pi)
    assert angles[:2].tolist() == pytest.approx([0.0, math.pi / 2], abs=1e-5)
    assert math.cos(angles[2].item()) == pytest.approx(-1.0, abs=1e-6)
    # radius along x: artanh(10 / 20) ellipse units of 60/sqrt(pi) px
    assert d[0, 0].item() == pytest.approx(math.atanh(0.5) * 60 / math.sqrt(math.pi), rel=1e-5)
    assert d[3].norm() > d[2].norm()
    centre = M.warped_to_source("roi_tanh_polar", torch.tensor([[[0.5, 3.5], [0.5, 17.5]]]), rois, (24, 20))
    assert torch.allclose(centre, torch.full_like(centre, 50.0), atol=1e-5)


def test_rois_normalised_and_checked() -> None:
    from facebone.errors import DataError

    r = M.as_rois(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), 1, (8, 8), 0.8)
    assert r.tolist() == [[1.0, 2.0, 3.0, 4.0, 0.0]]
    fixed = M.as_rois(None, 2, (112, 112), 0.8)
    assert fixed.shape == (2, 5)
    assert fixed[0, :4].tolist() == pytest.approx([11.2, 11.2, 100.8, 100.8])
    with pytest.raises(DataError, match=r"rois must be"):
        M.as_rois(torch.zeros(3, 6), 3, (8, 8), 0.8)
    with pytest.raises(DataError, match=r"N = 2"):
        M.as_rois(torch.zeros(3, 4), 2, (8, 8), 0.8)
