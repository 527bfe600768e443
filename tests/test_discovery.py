"""Discovery from in-memory entry points: every failure is isolated and reported."""
import pytest

import facebone
from facebone.plugin.discovery import load_plugins
from facebone.errors import PluginError

from fb_testing import _tiny_backbones, install_module, make_entry_point


def test_builtin_plugins_load_through_entry_points():
    plugins = load_plugins()
    dists = {p.provider.dist for p in plugins.loaded}
    assert dists == {"facebone"}
    assert "arcface" in plugins.registry("head") and "cartesian" in plugins.registry("warp")
    assert plugins.failures == []


def test_third_party_plugin_registers(monkeypatch):
    install_module(monkeypatch, "tp_good", facebone_backbones=_tiny_backbones)
    plugins = load_plugins([make_entry_point("good", "tp_good", dist="tp-good", version="0.3")])
    comp = plugins.get("backbone", "tiny")
    assert comp.provider.dist == "tp-good" and comp.provider.version == "0.3"
    assert plugins.loaded[0].components == [("backbone", "tiny")]


def test_import_failure_is_isolated_and_cited(monkeypatch):
    install_module(monkeypatch, "tp_good", facebone_backbones=_tiny_backbones)
    eps = [make_entry_point("broken", "tp_missing_module_xyz", dist="tp-broken", version="9.9"),
           make_entry_point("good", "tp_good")]
    plugins = load_plugins(eps)
    assert "tiny" in plugins.registry("backbone")
    [failure] = plugins.failures
    assert failure.stage == "import" and failure.provider.dist == "tp-broken"
    assert "ModuleNotFoundError" in failure.error
    with pytest.raises(PluginError, match=r"unknown backbone 'fancy'.*tp-broken 9.9 .*failed to load: ModuleNotFoundError"):
        plugins.get("backbone", "fancy")


def test_bad_hook_signature_is_isolated(monkeypatch):
    @facebone.hookimpl
    def facebone_heads(registry, unexpected_argument):
        pass

    install_module(monkeypatch, "tp_badhook", facebone_heads=facebone_heads)
    plugins = load_plugins([make_entry_point("badhook", "tp_badhook")])
    [failure] = plugins.failures
    assert failure.stage == "hooks" and "unexpected_argument" in failure.error


def test_exception_while_registering_drops_all_of_that_plugins_components(monkeypatch):
    @facebone.hookimpl
    def facebone_backbones(registry):
        registry.add("half", lambda o, **r: None, summary="registered before the error")
        raise RuntimeError("boom")

    install_module(monkeypatch, "tp_raises", facebone_backbones=facebone_backbones)
    plugins = load_plugins([make_entry_point("raises", "tp_raises")])
    assert "half" not in plugins.registry("backbone")
    [failure] = plugins.failures
    assert failure.stage == "register" and failure.error == "RuntimeError: boom"


def test_invalid_component_is_a_registration_failure(monkeypatch):
    @facebone.hookimpl
    def facebone_warps(registry):
        registry.add("w", "not callable", summary="bad")

    install_module(monkeypatch, "tp_invalid", facebone_warps=facebone_warps)
    plugins = load_plugins([make_entry_point("invalid", "tp_invalid")])
    assert plugins.failures[0].stage == "register" and "not callable" in plugins.failures[0].error


def test_duplicate_names_across_plugins(monkeypatch):
    install_module(monkeypatch, "tp_a", facebone_backbones=_tiny_backbones)
    install_module(monkeypatch, "tp_b", facebone_backbones=_tiny_backbones)
    plugins = load_plugins([make_entry_point("a", "tp_a", dist="dist-a"), make_entry_point("b", "tp_b", dist="dist-b")])
    with pytest.raises(PluginError, match="provided by both"):
        plugins.get("backbone", "tiny")
    assert plugins.get("backbone", "dist-b:tiny").provider.dist == "dist-b"


def test_hook_name_typo_suggests_the_right_one(monkeypatch):
    @facebone.hookimpl
    def facebone_backbone(registry):
        pass

    install_module(monkeypatch, "tp_typo", facebone_backbone=facebone_backbone)
    [failure] = load_plugins([make_entry_point("typo", "tp_typo")]).failures
    assert failure.stage == "hooks"
    assert "'facebone_backbone' is not a facebone hook (did you mean 'facebone_backbones'" in failure.error


def test_hooks_without_the_marker_are_reported(monkeypatch):
    def facebone_heads(registry):
        pass

    install_module(monkeypatch, "tp_plain", facebone_heads=facebone_heads)
    [failure] = load_plugins([make_entry_point("plain", "tp_plain")]).failures
    assert "function 'facebone_heads' lacks the @facebone.hookimpl decorator" in failure.error
    install_module(monkeypatch, "tp_none", helper=lambda: None)
    [failure] = load_plugins([make_entry_point("none", "tp_none")]).failures
    assert "has no @facebone.hookimpl hook" in failure.error


def test_a_misspelt_unmarked_hook_is_reported_too(monkeypatch):
    def facebone_evaluator(registry):
        pass

    install_module(monkeypatch, "tp_both", facebone_evaluator=facebone_evaluator, facebone_heads=_tiny_backbones)
    [failure] = load_plugins([make_entry_point("both", "tp_both")]).failures
    assert "'facebone_evaluator' lacks the @facebone.hookimpl decorator (and is not a hook name" in failure.error


@pytest.mark.parametrize("declared, loads", [(None, True), ("1.0", True), ("1.9", False), ("2.0", False),
                                             ("0.1", False), ("one", False)])
def test_plugin_api_version(monkeypatch, declared, loads):
    extra = {} if declared is None else {"FACEBONE_PLUGIN_API": declared}
    install_module(monkeypatch, "tp_api", facebone_backbones=_tiny_backbones, **extra)
    plugins = load_plugins([make_entry_point("api", "tp_api", dist="tp-api", version="1.2")])
    assert ("tiny" in plugins.registry("backbone")) is loads
    if not loads:
        [failure] = plugins.failures
        assert failure.stage == "api" and "plugin API" in failure.error and "1.0" in failure.error
