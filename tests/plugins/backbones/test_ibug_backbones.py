"""rtnet50, iresnet18 and iresnet50 against ibug face_embedding's networks (fixtures by the original).

``fixtures/ibug/backbones.npz`` holds the original networks' outputs on seeded weights
(``fixtures/ibug_seeded.py``: each tensor seeded by its key name in the original's layout) and
a seeded input. Here the same weights are rebuilt from the original's key names, renamed to
facebone's with ``facebone.weights.ibug`` and loaded; outputs must agree to 2e-5 of the
output scale. The same tolerance fails for a ReLU in place of a PReLU and for border padding
in rtnet50's polar <-> RoI Tanh conversions.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facebone.model.build import build_backbone
from facebone.plugins.backbones.rtnet_model import polar_to_tanh_points, tanh_to_polar_grid
from facebone.plugins.warps import mapping as M
from facebone.plugins.warps.modules import sample_polar
from facebone.weights.ibug import rtnet_key_to_facebone, rtnet_key_to_ibug, to_facebone

FIXTURES = Path(__file__).parents[1] / "fixtures"
OUTPUTS = dict(np.load(FIXTURES / "ibug" / "backbones.npz"))
WARPS = dict(np.load(FIXTURES / "ibug" / "warps.npz"))
MANIFEST = json.loads((FIXTURES / "ibug" / "manifest.json").read_text())
SPEC = MANIFEST["backbones"]
TOL = 2e-5  # of the output scale


def _seeded():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ibug_seeded", FIXTURES / "ibug_seeded.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


S = _seeded()


def ibug_names(name: str, model: torch.nn.Module) -> dict[str, str]:
    """facebone key -> the original's key, in facebone's (module) order."""
    rename = rtnet_key_to_ibug if name == "rtnet50" else (lambda k: k)
    return {k: rename(k) for k in model.state_dict()}


def digest(keys: dict[str, str], model: torch.nn.Module) -> str:
    state = model.state_dict()
    return hashlib.sha256("\n".join(f"{ibug} {list(state[k].shape)}" for k, ibug in keys.items()).encode()).hexdigest()


def original_state(name: str, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The fixture's seeded state dict, with the ORIGINAL's key names."""
    state = model.state_dict()
    shapes = {ibug: tuple(state[k].shape) for k, ibug in ibug_names(name, model).items()}
    return S.seeded_state(shapes, SPEC[name]["weights_seed"])


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    out = {}
    for name in ("rtnet50", "iresnet18", "iresnet50"):
        model = build_backbone(name, embedding_size=512, image_size=112)
        model.load_state_dict(to_facebone(original_state(name, model), name), strict=True)
        out[name] = model.eval()
    return out


def input_of(name: str) -> torch.Tensor:
    return S.seeded_unit_images(2, 3, (112, 112), SPEC[name]["input_seed"]) * 2 - 1


def rel_err(got: torch.Tensor, want: np.ndarray) -> float:
    return float(np.abs(got.numpy() - want).max() / np.abs(want).max())


def test_key_names_and_shapes_are_the_originals(models) -> None:  # type: ignore[no-untyped-def]
    rtnet = models["rtnet50"]
    state = rtnet.state_dict()
    keys = ibug_names("rtnet50", rtnet)
    want = [entry.split(":") for entry in SPEC["rtnet50"]["key_shapes"]]
    assert [(ibug, ",".join(map(str, state[k].shape))) for k, ibug in keys.items()] == [tuple(w) for w in want]
    assert sum(k != ibug for k, ibug in keys.items()) == 516 and len(keys) == 523
    assert all(rtnet_key_to_facebone(ibug) == k for k, ibug in keys.items())
    for name in ("rtnet50", "iresnet18", "iresnet50"):
        keys = ibug_names(name, models[name])
        assert len(keys) == SPEC[name]["keys"] and digest(keys, models[name]) == SPEC[name]["key_sha256"], name


@pytest.mark.parametrize("rois", ["square", "rect"])
def test_rtnet50_matches_the_original(models, rois: str) -> None:  # type: ignore[no-untyped-def]
    """The fixed square RoI and per-sample non-square ones (the conversions use their aspect)."""
    boxes = M.from_ibug_rois(torch.tensor(SPEC[f"rtnet50_{rois}_rois"]))
    with torch.no_grad():
        got = models["rtnet50"](input_of("rtnet50"), boxes)
    assert rel_err(got, OUTPUTS[f"rtnet50/{rois}"]) <= TOL
    if rois == "square":
        with torch.no_grad():  # no RoIs: the square RoI's cached grids
            assert rel_err(models["rtnet50"](input_of("rtnet50")), OUTPUTS["rtnet50/square"]) <= TOL
    else:  # ignoring non-square RoIs is a real error
        with torch.no_grad():
            assert rel_err(models["rtnet50"](input_of("rtnet50")), OUTPUTS["rtnet50/rect"]) > 100 * TOL


@pytest.mark.parametrize("name", ["iresnet18", "iresnet50"])
def test_iresnet_matches_the_original(models, name: str) -> None:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        got = models[name](input_of(name))
    assert rel_err(got, OUTPUTS[name]) <= TOL


@contextlib.contextmanager
def replaced(parent: torch.nn.Module, key: str, module: torch.nn.Module):  # type: ignore[no-untyped-def]
    """``parent``'s child ``key`` replaced by ``module`` for the duration of the block."""
    old = parent._modules[key]
    parent._modules[key] = module
    try:
        yield
    finally:
        parent._modules[key] = old


@pytest.mark.parametrize("name", ["rtnet50", "iresnet18"])
def test_a_relu_for_the_prelu_fails_the_tolerance(models, name: str) -> None:  # type: ignore[no-untyped-def]
    model = models[name]
    parent, key = (model.stem, "2") if name == "rtnet50" else (model, "prelu")
    assert isinstance(parent._modules[key], torch.nn.PReLU)
    with replaced(parent, key, torch.nn.ReLU()), torch.no_grad():
        got = model(input_of(name))
    assert rel_err(got, OUTPUTS["rtnet50/square" if name == "rtnet50" else name]) > 20 * TOL


def test_border_padding_in_rtnet50_conversions_fails_the_tolerance(models) -> None:  # type: ignore[no-untyped-def]
    model = models["rtnet50"]
    halves = [m for m in model.modules() if hasattr(m, "tanh_space") and m.tanh_space]
    assert len(halves) == 10
    try:
        for half in halves:
            half.padding_mode = "border"
        with torch.no_grad():
            got = model(input_of("rtnet50"))
    finally:
        for half in halves:
            half.padding_mode = "zeros"
    assert rel_err(got, OUTPUTS["rtnet50/square"]) > 20 * TOL


@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_rtnet50_conversions_match_the_originals(padding: str) -> None:
    """The polar <-> RoI Tanh resampling of the hybrid blocks against ibug's
    ``roi_tanh_polar_to_roi_tanh`` / ``roi_tanh_to_roi_tanh_polar`` (non-square RoIs, keep_aspect_ratio)."""
    spec = MANIFEST["warps"]["conversion_map"]
    fmap = S.seeded_unit_images(spec["n"], spec["channels"], tuple(spec["hw"]), spec["seed"])
    rois = torch.tensor(MANIFEST["warps"]["conversion_rois"])
    hw = tuple(spec["hw"])
    to_tanh = sample_polar(fmap, polar_to_tanh_points(hw, rois), padding_mode=padding)
    to_polar = F.grid_sample(fmap, tanh_to_polar_grid(hw, rois), padding_mode=padding, align_corners=False)
    for got, key in ((to_tanh, f"polar_to_tanh/{padding}"), (to_polar, f"tanh_to_polar/{padding}")):
        assert np.abs(got.numpy() - WARPS[key].astype(np.float32)).max() <= 2e-3, key
    wrong = "border" if padding == "zeros" else "zeros"
    assert np.abs(sample_polar(fmap, polar_to_tanh_points(hw, rois), padding_mode=wrong).numpy()
                  - WARPS[f"polar_to_tanh/{padding}"].astype(np.float32)).max() > 0.1


def test_unknown_backbone_is_refused() -> None:
    from facebone.errors import ConfigError

    with pytest.raises(ConfigError, match="ibug face_embedding checkpoints are for rtnet50"):
        to_facebone({}, "mobilefacenet")
