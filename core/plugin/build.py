"""The one place components are built: call the factory, then check the kind's contract.

Every build (an experiment's tables, a command building a backbone by name) goes through
:func:`build_component`. A factory that raises, or returns something that breaks its kind's
contract (``facebone.contracts``), becomes a :class:`PluginError` naming the component, its
plugin and distribution; set ``FACEBONE_DEBUG=1`` (or pass ``--debug``) for the traceback.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from facebone.errors import FaceboneError, PluginError


def debug_enabled() -> bool:
    """True when full tracebacks of plugin errors were asked for (``FACEBONE_DEBUG=1``)."""
    return os.environ.get("FACEBONE_DEBUG", "").strip() not in ("", "0")


def _module_contract(obj: Any, runtime: dict[str, Any]) -> str | None:
    from torch import nn

    if not isinstance(obj, nn.Module):
        return f"built {type(obj).__name__}, not a torch.nn.Module"
    return None


def _backbone_contract(obj: Any, runtime: dict[str, Any]) -> str | None:
    problem = _module_contract(obj, runtime)
    if problem:
        return problem
    if not hasattr(obj, "embedding_size"):
        return "has no 'embedding_size' attribute"
    wanted = runtime.get("embedding_size")
    if wanted is not None and int(obj.embedding_size) != int(wanted):
        return f"built embedding_size {obj.embedding_size}, the experiment asks for {wanted}"
    return None


def _callable_contract(obj: Any, runtime: dict[str, Any]) -> str | None:
    return None if callable(obj) else f"built {type(obj).__name__}, which is not callable"


CONTRACTS: dict[str, Callable[[Any, dict[str, Any]], str | None]] = {
    "backbone": _backbone_contract,
    "warp": _module_contract,
    "head": _module_contract,
    "objective": _module_contract,
    "evaluator": _callable_contract,
}
"""Per kind: a check of what the factory returned (None when it meets the contract)."""


def build_component(component: Any, options: Any, **runtime: Any) -> Any:
    """``component.factory(options, **runtime)``, its errors and contract checked.

    Facebone's own errors raised by a factory (e.g. a DataError on a bad file) pass through;
    any other exception is a plugin failure and is reported in one line.
    """
    who = f"{component.kind} '{component.name}' ({component.provider})"
    try:
        obj = component.factory(options, **runtime)
    except FaceboneError:
        raise
    except Exception as exc:
        if debug_enabled():
            raise
        raise PluginError(f"{who} failed while building: {type(exc).__name__}: {exc} "
                          "(FACEBONE_DEBUG=1 shows the traceback)") from exc
    problem = CONTRACTS.get(component.kind, lambda o, r: None)(obj, runtime)
    if problem:
        raise PluginError(f"{who} {problem}")
    return obj
