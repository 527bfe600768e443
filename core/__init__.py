"""facebone: a plugin-based framework for face-recognition backbones.

Public API for plugin authors:

- :data:`hookimpl` marks registration hooks (``facebone_backbones(registry)``, ...).
- ``registry.add(name, factory, options=..., summary=...)`` registers a component.
- :func:`option` declares one TOML option of a component's options dataclass.
- The component contracts are documented in :mod:`facebone.contracts`.
"""
from __future__ import annotations

import pluggy

__version__ = "0.1.0"

PLUGIN_API = (1, 0)
"""The plugin API version (major, minor). A plugin module may declare ``FACEBONE_PLUGIN_API = "1.0"``:
it loads when the major version is equal and its minor is no newer; otherwise ``facebone plugins``
reports it as failed. Minor versions add to the API; a major version changes it."""

hookimpl = pluggy.HookimplMarker("facebone")
"""Marker for plugin hook implementations (``@facebone.hookimpl``)."""

from facebone.errors import ConfigError, DataError, FaceboneError, MissingDependencyError, PluginError  # noqa: E402
from facebone.plugin.options import option  # noqa: E402

__all__ = [
    "__version__",
    "PLUGIN_API",
    "hookimpl",
    "option",
    "FaceboneError",
    "ConfigError",
    "DataError",
    "PluginError",
    "MissingDependencyError",
]
