"""The RoI Tanh warps against ibug's ``roi_tanh_warping`` (fixtures written by the original).

``fixtures/ibug/warps.npz`` holds the original's warps and restores of a seeded [0, 1] image
(``fixtures/make_ibug_fixtures.py``). facebone warps the same image mapped to [-1, 1] with
the same RoIs converted to its pixel convention (``mapping.from_ibug_rois``); the results,
mapped back to [0, 1], must agree to 2e-3. A wrong padding mode must not.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facebone.plugin.options import build_options
from facebone.plugins.warps import mapping as M
from facebone.plugins.warps import roi_tanh
from facebone.plugin.registry import Registry

FIXTURES = Path(__file__).parents[1] / "fixtures"
WARPS = dict(np.load(FIXTURES / "ibug" / "warps.npz"))
SPEC = json.loads((FIXTURES / "ibug" / "manifest.json").read_text())["warps"]
TOL = 2e-3
CASES = sorted(k[len("warp/"):] for k in WARPS if k.startswith("warp/"))


def _seeded():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ibug_seeded", FIXTURES / "ibug_seeded.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


S = _seeded()


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = Registry("warp")
    roi_tanh.facebone_warps(reg)
    return reg


def image() -> torch.Tensor:
    spec = SPEC["image"]
    return S.seeded_unit_images(spec["n"], spec["channels"], tuple(spec["hw"]), spec["seed"])


def rois() -> torch.Tensor:
    """The fixture's RoIs (ibug convention) with their angles, converted to facebone's."""
    box = M.from_ibug_rois(torch.tensor(SPEC["rois"]))
    return torch.cat([box, torch.tensor(SPEC["angles"])[:, None]], dim=1)


def build(registry: Registry, space: str, keep: str, padding: str):  # type: ignore[no-untyped-def]
    table = {"padding_mode": padding, "output_height": SPEC["out_hw"][0], "output_width": SPEC["out_hw"][1]}
    if keep != "None":
        table["keep_aspect_ratio"] = keep == "True"
    comp = registry.get(space)
    options, problems = build_options(comp.options, table, f"[warp] {space}")
    assert not problems, problems
    return comp.factory(options, image_size=SPEC["image"]["hw"][0]).eval()


def parse(case: str) -> tuple[str, str, str]:
    space, keep, padding = case.split("/")
    return space, keep.split("=")[1], padding


def unit(x: torch.Tensor) -> np.ndarray:
    return ((x + 1) / 2).numpy()


def test_fixtures_cover_every_warp_both_paddings_and_aspect_modes() -> None:
    spaces = {parse(c)[0] for c in CASES}
    assert spaces == set(M.SPACES)
    assert {parse(c)[2] for c in CASES} == {"zeros", "border"}
    assert {parse(c)[1] for c in CASES if parse(c)[0] != "roi_tanh"} == {"True", "False"}
    assert len(CASES) == 10 and all(f"restore/{c}" in WARPS for c in CASES)


@pytest.mark.parametrize("case", CASES)
def test_warp_matches_the_original(registry: Registry, case: str) -> None:
    warp = build(registry, *parse(case))
    got = unit(warp(image() * 2 - 1, rois()))
    want = WARPS[f"warp/{case}"].astype(np.float32)
    assert got.shape == want.shape
    err = np.abs(got - want).max()
    assert err <= TOL, f"{case}: max |diff| {err:.2e}"


@pytest.mark.parametrize("case", CASES)
def test_restore_matches_the_original(registry: Registry, case: str) -> None:
    """Restore of the original's own warp output (so only restore is compared)."""
    warp = build(registry, *parse(case))
    warped = torch.from_numpy(WARPS[f"warp/{case}"].astype(np.float32)) * 2 - 1
    got = unit(warp.restore(warped, rois(), size=tuple(SPEC["image"]["hw"])))
    want = WARPS[f"restore/{case}"].astype(np.float32)
    err = np.abs(got - want).max()
    assert err <= TOL, f"{case}: max |diff| {err:.2e}"


@pytest.mark.parametrize("space", M.SPACES)
def test_a_wrong_padding_mode_fails_the_tolerance(registry: Registry, space: str) -> None:
    """The tolerance is tight enough to see padding: border where the original used zeros (and the
    reverse) is off by far more than 2e-3, in the warp and in restore."""
    keep = "None" if space == "roi_tanh" else "True"
    for padding, wrong in (("zeros", "border"), ("border", "zeros")):
        case = f"{space}/keep={keep}/{padding}"
        warp = build(registry, space, keep, wrong)
        got = unit(warp(image() * 2 - 1, rois()))
        assert np.abs(got - WARPS[f"warp/{case}"].astype(np.float32)).max() > 50 * TOL, case
        warped = torch.from_numpy(WARPS[f"warp/{case}"].astype(np.float32)) * 2 - 1
        back = unit(warp.restore(warped, rois(), size=tuple(SPEC["image"]["hw"])))
        assert np.abs(back - WARPS[f"restore/{case}"].astype(np.float32)).max() > 50 * TOL, case


def test_half_pixel_shifted_polar_grid_or_unconverted_rois_fail(registry: Registry) -> None:
    """facebone's earlier polar grid (angles and radii at half-pixel centres) and RoIs passed
    without the pixel-convention conversion both fail the tolerance."""
    case = "roi_tanh_polar/keep=True/zeros"
    want = WARPS[f"warp/{case}"].astype(np.float32)
    warp = build(registry, *parse(case))
    raw = torch.cat([torch.tensor(SPEC["rois"]), torch.tensor(SPEC["angles"])[:, None]], dim=1)
    assert np.abs(unit(warp(image() * 2 - 1, raw)) - want).max() > 10 * TOL
    shifted = M.pixel_centres(warp.output_size) + 0.5  # the old grid: theta = 2 pi y / H, tanh r = x / W
    src = M.warped_to_source("roi_tanh_polar", shifted.expand(3, -1, -1, -1), rois(), warp.output_size)
    grid = M.to_grid(src, tuple(SPEC["image"]["hw"]))
    old = torch.nn.functional.grid_sample(image(), grid, align_corners=False)
    assert np.abs(old.numpy() - want).max() > 10 * TOL


def test_fixed_roi_ibug_is_the_originals_truncated_box() -> None:
    assert M.ibug_fixed_box((112, 112), 0.8) == (11.5, 11.5, 100.5, 100.5)
    assert M.to_ibug_rois(M.fixed_rois(1, (112, 112), 0.8, style="ibug"))[0, :4].tolist() == [11, 11, 100, 100]
    exact = M.fixed_rois(1, (112, 112), 0.8)[0, :4]
    assert exact.tolist() == pytest.approx([11.2, 11.2, 100.8, 100.8])  # same centre, 89.6 px
    assert M.from_ibug_rois(torch.tensor([[11, 11, 100, 100]])).dtype == torch.float32


def test_fixed_ibug_roi_equals_passing_the_originals_box(registry: Registry) -> None:
    comp = registry.get("roi_tanh")
    options, _ = build_options(comp.options, {"fixed_roi": "ibug"}, "[warp]")
    warp = comp.factory(options, image_size=112).eval()
    images = torch.rand(1, 3, 112, 112) * 2 - 1
    box = M.from_ibug_rois(torch.tensor([[11.0, 11.0, 100.0, 100.0]]))
    assert torch.allclose(warp(images), warp(images, box), atol=1e-6)
    options, _ = build_options(comp.options, {}, "[warp]")
    exact = comp.factory(options, image_size=112).eval()
    assert (exact(images) - warp(images)).abs().max() > 0.1  # 89.6 vs 89 px is visible in roi_tanh
