"""Plugin discovery: entry points in group ``facebone`` -> one registry per kind.

Each entry point is found, loaded and registered on its own. A failure at any stage
(import error, bad hook signature, exception while registering, invalid component) is
recorded as a :class:`PluginFailure` with the plugin's distribution and version; the
plugin's components are then left out entirely, and every other plugin still works.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata as md
from typing import Any, Iterable

import pluggy

from facebone.plugin import hookspecs
from facebone.plugin.registry import KINDS, Provider, Registry

GROUP = "facebone"


@dataclasses.dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or registered."""

    provider: Provider
    stage: str  # "import", "hooks" or "register"
    error: str


@dataclasses.dataclass
class PluginInfo:
    """A plugin that loaded, with what it registered."""

    provider: Provider
    components: list[tuple[str, str]]  # (kind, name)


class Plugins:
    """Every registry, plus what was loaded and what failed."""

    def __init__(self) -> None:
        self.registries: dict[str, Registry] = {k: Registry(k) for k in KINDS}
        self.loaded: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []
        for reg in self.registries.values():
            reg.failures = self.failures

    def registry(self, kind: str) -> Registry:
        from facebone.plugin.registry import normalise_kind

        return self.registries[normalise_kind(kind)]

    def get(self, kind: str, name: str):  # type: ignore[no-untyped-def]
        """The component ``name`` of ``kind`` (PluginError naming any load failure if missing)."""
        return self.registry(kind).get(name)

    def provider_versions(self) -> dict[str, str]:
        """{distribution: version} of every plugin that loaded or failed."""
        out = {p.provider.dist: p.provider.version for p in self.loaded}
        out.update({f.provider.dist: f.provider.version for f in self.failures})
        return out


def _dist_of(ep: Any) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown", "unknown"
    return dist.metadata["Name"] or "unknown", dist.version or "unknown"


def _one_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def hook_problem(module: Any) -> str | None:
    """A mistake in how ``module`` declares its hooks, or None.

    Caught here (pluggy would silently ignore the first two or give a bare "unknown hook"):
    a hook function without ``@facebone.hookimpl``, a misspelt hook name (with the closest
    valid name), and a module that declares no hook at all.
    """
    from facebone.plugin.options import suggest

    marker = f"{GROUP}_impl"
    names = list(hookspecs.HOOK_KIND)
    marked = []
    for attr, obj in sorted(vars(module).items()):
        if not callable(obj) or isinstance(obj, type):
            continue
        is_marked = hasattr(obj, marker)
        if is_marked:
            marked.append(attr)
            if attr not in hookspecs.HOOK_KIND:
                return f"'{attr}' is not a facebone hook{suggest(attr, names)}; hooks: {', '.join(names)}"
        elif attr in hookspecs.HOOK_KIND or (attr.startswith(f"{GROUP}_") and suggest(attr, names)):
            hint = "" if attr in hookspecs.HOOK_KIND else f" (and is not a hook name{suggest(attr, names)})"
            return f"function '{attr}' lacks the @facebone.hookimpl decorator{hint}, so it is never called"
    if not marked:
        return f"module {getattr(module, '__name__', module)!r} has no @facebone.hookimpl hook ({', '.join(names)})"
    return None


def load_plugins(entry_points: Iterable[Any] | None = None) -> Plugins:
    """Discover and register plugins. ``entry_points`` defaults to the installed ones."""
    if entry_points is None:
        entry_points = md.entry_points(group=GROUP)
    plugins = Plugins()
    seen_modules: set[str] = set()
    for ep in sorted(entry_points, key=lambda e: e.name):
        dist, version = _dist_of(ep)
        provider = Provider(ep.name, ep.value, dist, version)
        if ep.value in seen_modules:  # the same module twice (e.g. two installs): register once
            continue
        seen_modules.add(ep.value)
        _load_one(plugins, ep, provider)
    return plugins


def api_problem(module: Any) -> str | None:
    """Why a plugin module's declared ``FACEBONE_PLUGIN_API = "MAJOR.MINOR"`` does not fit this facebone.

    A plugin needs the same major version and a minor version no newer than facebone's
    (:data:`facebone.PLUGIN_API`); a module that declares nothing is assumed to fit.
    """
    from facebone import PLUGIN_API

    wanted = getattr(module, "FACEBONE_PLUGIN_API", None)
    if wanted is None:
        return None
    have = ".".join(map(str, PLUGIN_API))
    try:
        major, minor = (int(x) for x in str(wanted).split("."))
    except ValueError:
        return f"FACEBONE_PLUGIN_API = {wanted!r} is not a plugin API version 'MAJOR.MINOR' (this facebone provides {have})"
    if major != PLUGIN_API[0] or minor > PLUGIN_API[1]:
        return f"needs facebone plugin API {wanted}, this facebone provides {have}"
    return None


def _load_one(plugins: Plugins, ep: Any, provider: Provider) -> None:
    try:
        module = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure is isolated and reported
        plugins.failures.append(PluginFailure(provider, "import", _one_line(exc)))
        return
    problem = api_problem(module)
    if problem:
        plugins.failures.append(PluginFailure(provider, "api", problem))
        return
    problem = hook_problem(module)
    if problem:
        plugins.failures.append(PluginFailure(provider, "hooks", problem))
        return
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(module, name=ep.name)
        pm.check_pending()
    except Exception as exc:  # noqa: BLE001 - pluggy's validation errors name the hook
        plugins.failures.append(PluginFailure(provider, "hooks", _one_line(exc)))
        return
    pending: dict[str, list] = {}
    try:
        for hook_name, kind in hookspecs.HOOK_KIND.items():
            registry = plugins.registries[kind]
            registry._provider = provider
            registry._pending = pending.setdefault(kind, [])
            try:
                getattr(pm.hook, hook_name)(registry=registry)
            finally:
                registry._pending = None
    except Exception as exc:  # noqa: BLE001 - a plugin raising while registering is isolated
        plugins.failures.append(PluginFailure(provider, "register", _one_line(exc)))
        return
    components = []
    for kind, comps in pending.items():
        plugins.registries[kind]._commit(comps)
        components.extend((kind, c.name) for c in comps)
    plugins.loaded.append(PluginInfo(provider, components))


_CACHE: Plugins | None = None


def get_plugins(refresh: bool = False) -> Plugins:
    """The installed plugins, discovered once per process."""
    global _CACHE
    if _CACHE is None or refresh:
        importlib.invalidate_caches()
        _CACHE = load_plugins()
    return _CACHE


def reset_plugins_cache() -> None:
    """Forget discovered plugins (tests)."""
    global _CACHE
    _CACHE = None
