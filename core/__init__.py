"""facebone: a plugin-based framework for face-recognition backbones.

Public API for plugin authors:

- :data:`hookimpl` marks registration hooks (``facebone_backbones(registry)``, ...).
- ``registry.add(name, factory, options=..., summary=...)`` registers a component.
- :func:`option` declares one TOML option of a component's options dataclass.
- The component contracts are documented in :mod:`facebone.contracts`.

For users of a trained model: :func:`load` (``facebone.load(RUN_DIR)``) returns a predictor
(:mod:`facebone.predict`); it is imported on first use, so ``import facebone`` stays light.
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



def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name == "load":  # lazy: importing facebone must not import torch
        from facebone.predict.predictor import load

        return load
    raise AttributeError(f"module 'facebone' has no attribute {name!r}")


__all__ = [
    "__version__",
    "load",
    "PLUGIN_API",
    "hookimpl",
    "option",
    "FaceboneError",
    "ConfigError",
    "DataError",
    "PluginError",
    "MissingDependencyError",
]
