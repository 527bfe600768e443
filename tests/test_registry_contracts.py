"""Registry-driven contract tests: every registered component of every kind, so a new plugin
is tested without writing a test (backbones and heads have their own, heavier ones)."""
import pytest

from facebone.plugin.discovery import load_plugins
from facebone.testing import check_options, check_warp
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


def _objective_inputs():
    """A tiny model, the core's classifier, a head, a frozen teacher and one batch."""
    import copy

    from fb_testing import TinyOptions, build_tiny
    from facebone.contracts import Batch
    from facebone.model.face_model import FaceModel
    from facebone.train.classifier import Classifier
    from facebone.train.teacher import FrozenTeacher

    torch.manual_seed(0)
    warp_comp = PLUGINS.get("warp", "cartesian")
    warp = warp_comp.factory(build_options(warp_comp.options, {}, "warp")[0], image_size=16)
    model = FaceModel(warp, build_tiny(TinyOptions(), embedding_size=8, image_size=16))
    head_comp = PLUGINS.get("head", "cosface")
    head = head_comp.factory(build_options(head_comp.options, {}, "head")[0], num_classes=5, embedding_size=8, seed=0)
    teacher = FrozenTeacher(copy.deepcopy(model), 16, "test")
    batch = Batch(torch.rand(6, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 3, 4, 0]))
    return model, Classifier(5, 8, seed=0), head, teacher, batch


@pytest.mark.parametrize("name", PLUGINS.registry("objective").names())
def test_every_objective_returns_named_scalar_terms_that_train_the_model(name):
    comp = PLUGINS.get("objective", name)
    required = {i.name: i for i in describe_options(comp.options) if i.required}
    if set(required) - {"teacher"}:
        pytest.skip(f"required options {sorted(required)} have no generic value")
    options, problems = build_options(comp.options, {"teacher": "runs/teacher"} if required else {}, name)
    assert problems == []
    objective = comp.factory(options, num_classes=5, embedding_size=8, seed=0)
    assert isinstance(objective, torch.nn.Module)
    model, classifier, head, teacher, batch = _objective_inputs()
    terms = objective(batch, model=model, classifier=classifier, head=head, teacher=teacher)
    assert terms and all(isinstance(k, str) and k for k in terms)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in model.backbone.parameters())
    assert all(p.grad is None for p in teacher.parameters())
