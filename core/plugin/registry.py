"""One registry per component kind (backbones, heads, warps, evaluators, objectives).

Plugins fill registries through their registration hooks::

    @facebone.hookimpl
    def facebone_backbones(registry):
        registry.add("mynet", build_mynet, options=MyNetOptions, summary="My backbone")
"""
from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import re
from typing import Any, Callable, Iterator

from facebone.errors import PluginError
from facebone.plugin.options import check_options_class, suggest

KINDS = ("backbone", "head", "warp", "evaluator", "objective")
"""Component kinds, singular. The CLI also accepts plurals ('backbones')."""


@dataclasses.dataclass(frozen=True)
class Provider:
    """Who registered a component: the entry point's name and its distribution."""

    plugin: str
    module: str
    dist: str
    version: str

    def __str__(self) -> str:
        return f"{self.dist} {self.version} (plugin '{self.plugin}')"


BUILTIN_TEST_PROVIDER = Provider("local", "local", "local", "0")


@dataclasses.dataclass(frozen=True)
class Component:
    """A registered component: its name, factory, options class and one-line summary."""

    kind: str
    name: str
    factory: Callable[..., Any]
    options: type | None
    summary: str
    provider: Provider
    check: Callable[[Any, dict], list[str]] | None = None
    check_inputs: Callable[[Any, dict], list[str]] | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.provider.dist}:{self.name}"


COMPONENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
"""Valid component names: what a TOML ``type = "..."`` and a file name can both hold."""


def factory_signature_problem(factory: Callable[..., Any]) -> str | None:
    """Why ``factory`` cannot be called as ``factory(options, **runtime)``, or None.

    It must take the options as its first positional parameter and accept keyword arguments
    it does not know (``**runtime``), so that the core can pass new run-time values.
    """
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None  # a builtin or C callable: nothing to check
    params = list(sig.parameters.values())
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return "must accept **runtime (def factory(options, *, ..., **runtime)): the core passes run-time values"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional and not any(p.kind is p.VAR_POSITIONAL for p in params):
        return "must take the options as its first parameter (def factory(options, **runtime))"
    required = [p for p in positional[1:] if p.default is p.empty]
    if required:
        return (f"has required positional parameter '{required[0].name}' after the options; make run-time values "
                "keyword-only")
    return None


def normalise_kind(kind: str) -> str:
    """'backbones' -> 'backbone'; raise PluginError for an unknown kind."""
    k = kind.lower().rstrip("s") if kind.lower() not in KINDS else kind.lower()
    if k not in KINDS:
        raise PluginError(f"unknown component kind '{kind}'{suggest(kind, KINDS)}; kinds: {', '.join(KINDS)}")
    return k


class Registry:
    """Components of one kind, by name. ``add`` is the plugin-author API."""

    def __init__(self, kind: str):
        self.kind = normalise_kind(kind)
        self._components: dict[str, list[Component]] = {}
        self._provider: Provider = BUILTIN_TEST_PROVIDER
        self._pending: list[Component] | None = None
        self.failures: list[Any] = []  # set by the plugin manager: failed plugins, for messages

    # -- plugin-author API ---------------------------------------------------------------
    def add(self, name: str, factory: Callable[..., Any], *, options: type | None = None, summary: str,
            check: Callable[[Any, dict], list[str]] | None = None,
            check_inputs: Callable[[Any, dict], list[str]] | None = None) -> None:
        """Register component ``name``.

        ``factory(options, **runtime)`` builds it; ``options`` is a frozen keyword-only
        dataclass (or None when it takes none); ``summary`` is one line for `facebone list`.
        ``check(options, experiment)``, if given, is called at validation time with the
        validated options and the whole experiment (a dict of TOML tables, defaults filled)
        and returns a list of problems (e.g. a backbone that needs a particular warp).
        ``check_inputs(options, experiment)``, the same for the files the component will read
        (an evaluator's data sets), is called only when validation checks paths on disk
        (``facebone check`` and ``run``; not when a run directory is evaluated again).
        """
        if not isinstance(name, str) or not COMPONENT_NAME.match(name):
            raise PluginError(f"{self.kind} name {name!r} is invalid: use letters, digits and _ . - "
                              "(starting with a letter or digit, at most 100 characters)")
        if not callable(factory):
            raise PluginError(f"{self.kind} '{name}': factory {factory!r} is not callable")
        problem = factory_signature_problem(factory)
        if problem:
            raise PluginError(f"{self.kind} '{name}': factory {getattr(factory, '__qualname__', factory)!r} "
                              f"{problem}")
        if options is not None:
            try:
                check_options_class(options)
            except TypeError as exc:
                raise PluginError(f"{self.kind} '{name}': {exc}") from None
        if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
            raise PluginError(f"{self.kind} '{name}': summary must be one non-empty line")
        comp = Component(self.kind, name, factory, options, summary.strip(), self._provider, check, check_inputs)
        if self._pending is not None:
            self._pending.append(comp)
        else:
            self._commit([comp])

    # -- core API ------------------------------------------------------------------------
    def _commit(self, comps: list[Component]) -> None:
        for comp in comps:
            self._components.setdefault(comp.name, []).append(comp)

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, sorted, optionally filtered by a wildcard pattern ('iresnet*')."""
        names = sorted(self._components)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except PluginError:
            return False
        return True

    def __iter__(self) -> Iterator[Component]:
        for name in self.names():
            yield from self._components[name]

    def __len__(self) -> int:
        return len(self._components)

    def get(self, name: str) -> Component:
        """The component called ``name`` (or ``dist:name``); PluginError if missing or ambiguous."""
        dist = None
        if ":" in name:
            dist, name = name.split(":", 1)
        found = self._components.get(name, [])
        if dist is not None:
            found = [c for c in found if c.provider.dist == dist]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            providers = " and ".join(str(c.provider) for c in found)
            options = ", ".join(repr(c.qualified_name) for c in found)
            raise PluginError(f"{self.kind} '{name}' is provided by both {providers}; pick one with {options}")
        message = f"unknown {self.kind} '{name if dist is None else dist + ':' + name}'{suggest(name, self._components)}"
        message += f"; see `facebone list {self.kind}s`"
        if self.failures:
            broken = "; ".join(f"{f.provider} failed to load: {f.error}" for f in self.failures)
            message += f". Note: {broken}"
        raise PluginError(message)

    def duplicates(self) -> dict[str, list[Component]]:
        """Names that more than one plugin registered."""
        return {n: cs for n, cs in self._components.items() if len(cs) > 1}
