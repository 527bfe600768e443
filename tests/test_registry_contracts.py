"""Registry-driven contract tests: every registered component of every kind, so a new plugin
is tested without writing a test (backbones and heads have their own, heavier ones)."""
import pytest

from facebone.plugin.discovery import load_plugins
from facebone.testing import check_objective, check_options, check_warp
from facebone.plugin.registry import KINDS

from fb_testing import facebone

PLUGINS = load_plugins()
COMPONENTS = [(kind, comp.name) for kind in KINDS for comp in PLUGINS.registry(kind)]


def test_every_kind_has_built_in_components():
    assert {kind for kind, _ in COMPONENTS} == set(KINDS)


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_options_are_documented_and_defaults_round_trip(kind, name):
    check_options(kind, name, PLUGINS)


@pytest.mark.parametrize("name", PLUGINS.registry("warp").names())
def test_every_warp_is_a_batched_differentiable_module_with_an_inverse(name):
    check_warp(name, PLUGINS)


@pytest.mark.parametrize("kind, name", [c for c in COMPONENTS if c[0] in ("warp", "head", "evaluator", "objective")])
def test_describe_works_for_every_component(kind, name):
    result = facebone("describe", kind, name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{kind} {name}: ")


@pytest.mark.parametrize("name", PLUGINS.registry("objective").names())
def test_every_objective_returns_named_scalar_terms_that_train_the_model(name):
    check_objective(name, PLUGINS)
