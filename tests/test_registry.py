import dataclasses

import pytest

from facebone import option
from facebone.errors import PluginError
from facebone.plugin.registry import Provider, Registry, normalise_kind


@dataclasses.dataclass(frozen=True, kw_only=True)
class Opts:
    depth: int = option(50, "layers")


def factory(options, **runtime):
    return ("built", options, runtime)


def test_add_and_get_and_names_with_pattern():
    reg = Registry("backbones")
    reg.add("iresnet50", factory, options=Opts, summary="r50")
    reg.add("iresnet100", factory, options=Opts, summary="r100")
    reg.add("mobilefacenet", factory, summary="mbf")
    assert reg.kind == "backbone"
    assert reg.names() == ["iresnet100", "iresnet50", "mobilefacenet"]
    assert reg.names("iresnet*") == ["iresnet100", "iresnet50"]
    comp = reg.get("iresnet50")
    assert comp.summary == "r50" and comp.options is Opts
    assert comp.factory(Opts(), n=3) == ("built", Opts(), {"n": 3})
    assert "iresnet50" in reg and "nope" not in reg


def test_unknown_name_suggests_closest_and_how_to_list():
    reg = Registry("backbone")
    reg.add("iresnet50", factory, options=Opts, summary="r50")
    with pytest.raises(PluginError, match=r"unknown backbone 'iresnt50' \(did you mean 'iresnet50'\?\).*facebone list backbones"):
        reg.get("iresnt50")


@pytest.mark.parametrize("bad, match", [
    (dict(name="", factory=factory, summary="x"), "name"),
    (dict(name="a:b", factory=factory, summary="x"), "name"),
    (dict(name="a", factory=42, summary="x"), "not callable"),
    (dict(name="a", factory=factory, summary=""), "summary"),
    (dict(name="a", factory=factory, summary="two\nlines"), "summary"),
])
def test_add_rejects_bad_registrations(bad, match):
    with pytest.raises(PluginError, match=match):
        Registry("head").add(bad.pop("name"), bad.pop("factory"), **bad)


def test_add_rejects_options_that_are_not_frozen_kw_only_dataclasses():
    @dataclasses.dataclass
    class Mutable:
        x: int = 1

    @dataclasses.dataclass(frozen=True)
    class Positional:
        x: int = 1

    for cls, match in ((Mutable, "frozen"), (Positional, "keyword-only"), (dict, "dataclass")):
        with pytest.raises(PluginError, match=match):
            Registry("warp").add("w", factory, options=cls, summary="w")


def test_duplicates_are_an_error_naming_both_providers_and_dist_prefix_picks_one():
    reg = Registry("backbone")
    reg._provider = Provider("a", "pkg_a", "dist-a", "1.0")
    reg.add("net", factory, summary="from a")
    reg._provider = Provider("b", "pkg_b", "dist-b", "2.0")
    reg.add("net", factory, summary="from b")
    with pytest.raises(PluginError, match=r"dist-a 1.0 .* and dist-b 2.0 .*'dist-a:net', 'dist-b:net'"):
        reg.get("net")
    assert reg.get("dist-b:net").summary == "from b"
    assert list(reg.duplicates()) == ["net"]


def test_normalise_kind():
    assert normalise_kind("Backbones") == "backbone"
    assert normalise_kind("evaluator") == "evaluator"
    with pytest.raises(PluginError, match="did you mean 'head'"):
        normalise_kind("heds")


@pytest.mark.parametrize("bad_factory, match", [
    (lambda options: None, r"must accept \*\*runtime"),
    (lambda options, *, embedding_size: None, r"must accept \*\*runtime"),
    (lambda **runtime: None, "must take the options as its first parameter"),
    (lambda options, image_size, **runtime: None, "required positional parameter 'image_size'"),
])
def test_factory_signatures_are_checked_at_add(bad_factory, match):
    reg = Registry("backbone")
    with pytest.raises(PluginError, match=rf"backbone 'net': factory .* {match}"):
        reg.add("net", bad_factory, summary="s")
    assert "net" not in reg


def test_good_factory_signatures():
    import functools

    def build(depth, options, *, embedding_size=512, **runtime):  # type: ignore[no-untyped-def]
        return depth

    class Builder:
        def __call__(self, options, **runtime):  # type: ignore[no-untyped-def]
            return options

    reg = Registry("backbone")
    reg.add("a", functools.partial(build, 50), summary="partial")
    reg.add("b", Builder(), summary="callable object")
    reg.add("c", lambda options, *args, **kw: None, summary="varargs")
    assert reg.names() == ["a", "b", "c"]


@pytest.mark.parametrize("name", ["bad name!", "", " x", "x:y", "../x", "-x", "a" * 101, "é"])
def test_component_names_are_validated(name):
    with pytest.raises(PluginError, match="is invalid: use letters, digits and _ . -"):
        Registry("head").add(name, factory, summary="s")
