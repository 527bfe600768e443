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

hookimpl = pluggy.HookimplMarker("facebone")
"""Marker for plugin hook implementations (``@facebone.hookimpl``)."""

from facebone.errors import ConfigError, DataError, FaceboneError, PluginError  # noqa: E402
from facebone.plugin.options import option  # noqa: E402

__all__ = [
    "__version__",
    "hookimpl",
    "option",
    "FaceboneError",
    "ConfigError",
    "DataError",
    "PluginError",
]
