"""Registry-driven contract tests: every registered component of every kind, so a new plugin
is tested without writing a test (backbones and heads have their own, heavier ones)."""
import pytest
import torch

from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options, describe_options, options_to_dict
from facebone.plugin.registry import KINDS

from fb_testing import facebone

PLUGINS = load_plugins()
COMPONENTS = [(kind, comp.name) for kind in KINDS for comp in PLUGINS.registry(kind)]


def test_every_kind_has_built_in_components():
    assert {kind for kind, _ in COMPONENTS} == set(KINDS)


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_options_are_documented_and_defaults_round_trip(kind, name):
    comp = PLUGINS.get(kind, name)
    infos = describe_options(comp.options)
    assert all(info.help.strip() for info in infos), [i.name for i in infos if not i.help.strip()]
    required = {i.name for i in infos if i.required}
    if comp.options is not None and not required:
        default = comp.options()
        rebuilt, problems = build_options(comp.options, {k: v for k, v in options_to_dict(default).items()
                                                         if v is not None}, name)
        assert problems == [] and rebuilt == default


@pytest.mark.parametrize("name", PLUGINS.registry("warp").names())
def test_every_warp_is_a_batched_differentiable_module_with_an_inverse(name):
    comp = PLUGINS.get("warp", name)
    options, problems = build_options(comp.options, {}, name)
    assert problems == []
    warp = comp.factory(options, image_size=32)
    assert isinstance(warp, torch.nn.Module)
    images = torch.rand(3, 3, 32, 32, requires_grad=True)
    warped = warp(images)
    assert warped.shape == (3, 3, *warp.output_size)
    warped.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    restored = warp.restore(warped.detach())
    assert restored.shape == (3, 3, 32, 32)


@pytest.mark.parametrize("kind, name", [c for c in COMPONENTS if c[0] in ("warp", "head", "evaluator")])
def test_describe_works_for_every_component(kind, name):
    result = facebone("describe", kind, name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{kind} {name}: ")
