"""facebone against the ORIGINAL code, on seeded weights and a fixed input: the GWP paper's GWP
and GAP iResNet-50/100 (7x7 stem), its AdaFace-layout variant, and the backbone comparison's
MobileFaceNet, ShuffleFaceNets and (Shuffle)MixFaceNets. The originals' outputs were written by
``tests/plugins/fixtures/make_gwp_light_fixtures.py``; no weights are stored, both sides seed
each tensor from its name. Agreement: max |facebone - original| <= 2e-5 of max |original|.
The last tests show that this tolerance catches the old summing GWP pool and a ReLU in place
of a PReLU."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from facebone.model.build import build_backbone

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import gwp_light_fixtures as fx  # noqa: E402

FIXTURES = list(fx.MANIFEST["models"])


def seeded_model(fixture: str) -> torch.nn.Module:
    name, options = fx.facebone_backbone(fixture)
    model = build_backbone(name, options)
    model.load_state_dict(fx.seeded(model.state_dict(), fixture), strict=True)
    return model.eval()


def embed(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def test_every_fixture_has_an_output_and_a_facebone_backbone() -> None:
    assert len(FIXTURES) == 16
    for fixture in FIXTURES:
        assert f"{fixture}.output" in fx.OUTPUTS
        fx.facebone_backbone(fixture)
    assert fx.facebone_backbone("ito_sfn1_0") == ("shufflefacenet_cmp_1_5", {})  # the repository's swap, corrected
    assert fx.facebone_backbone("ito_sfn1_5") == ("shufflefacenet_cmp_1_0", {})


@pytest.mark.parametrize("fixture", FIXTURES)
def test_state_dict_layout_is_the_originals(fixture: str) -> None:
    name, options = fx.facebone_backbone(fixture)
    model = build_backbone(name, options)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    unused = getattr(model, "unused_checkpoint_shapes", dict)()  # the comparison MixFaceNets' dead GDC head
    assert not set(unused) & set(shapes)
    entry = fx.MANIFEST["models"][fixture]
    assert len(shapes) + len(unused) == entry["keys"]
    assert fx.layout_sha({**shapes, **unused}) == entry["layout_sha256"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_output_matches_the_original(fixture: str) -> None:
    model = seeded_model(fixture)
    out = embed(model, fx.model_input())
    if fixture.startswith("adaface_"):
        # the AdaFace layout returns (x / clamp(|x|, 1e-3, 100), |x|); facebone's backbone returns x
        norm = out.norm(dim=1, keepdim=True)
        assert fx.relative_error(norm, f"{fixture}.norm") <= fx.TOLERANCE
        out = out / norm.clamp(1e-3, 100)
    assert fx.relative_error(out, f"{fixture}.output") <= fx.TOLERANCE


def test_the_old_summing_gwp_pool_fails_the_tolerance() -> None:
    model = seeded_model("gwp_iresnet50")
    weight = model.pool.weight
    model.pool.forward = lambda x: torch.einsum("nchw,hw->nc", x, weight)  # the pre-fix pool: weighted sum
    error = fx.relative_error(embed(model, fx.model_input()), "gwp_iresnet50.output")
    assert error > 1e3 * fx.TOLERANCE


def _replace_last_prelu(model: torch.nn.Module) -> str:
    name = [n for n, m in model.named_modules() if isinstance(m, torch.nn.PReLU)][-1]
    parent, _, attr = name.rpartition(".")
    model.get_submodule(parent)._modules[attr] = torch.nn.ReLU()
    return name


@pytest.mark.parametrize("fixture", ["gwp_iresnet50", "ito_mbf", "ito_sfn0_5", "ito_sfn2_0", "ito_mfn_xs",
                                     "ito_smfn_m"])
def test_a_relu_in_place_of_a_prelu_fails_the_tolerance(fixture: str) -> None:
    model = seeded_model(fixture)
    _replace_last_prelu(model)
    error = fx.relative_error(embed(model, fx.model_input()), f"{fixture}.output")
    assert error > 10 * fx.TOLERANCE
