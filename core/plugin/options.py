"""Typed component options.

A component's options are a frozen, keyword-only dataclass whose fields are its TOML keys::

    @dataclass(frozen=True, kw_only=True)
    class IResNetOptions:
        pooling: Literal["flatten", "gap", "gwp"] = option("flatten", "how the final map becomes a vector")

:func:`build_options` checks a TOML table against such a class and returns the instance,
or the list of every problem found (unknown key, wrong type, value outside a ``Literal``).
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union

_HELP = "help"


def option(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING) -> Any:
    """Declare one option: its default and a one-line help text."""
    if default is not dataclasses.MISSING and isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple, or default_factory, for a mutable default")
    return dataclasses.field(default=default, default_factory=default_factory, metadata={_HELP: help})


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """Describes one option for `facebone describe` and for validation."""

    name: str
    type: Any
    default: Any
    required: bool
    help: str

    @property
    def type_name(self) -> str:
        return type_name(self.type)


def check_options_class(cls: type) -> None:
    """Raise TypeError unless ``cls`` is a frozen, keyword-only dataclass whose fields have help."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"options {cls!r} must be a dataclass")
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if not params.frozen:
        raise TypeError(f"options {cls.__name__} must be frozen (@dataclass(frozen=True, kw_only=True))")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.kw_only:
            raise TypeError(f"options {cls.__name__}.{f.name} must be keyword-only (kw_only=True)")
        if f.name == "type":
            raise TypeError(f"options {cls.__name__}: 'type' is reserved (it names the component)")
        _check_supported(hints[f.name], f"{cls.__name__}.{f.name}")


def describe_options(cls: type | None) -> list[OptionInfo]:
    """Every option of ``cls`` with its type, default and help."""
    if cls is None:
        return []
    hints = typing.get_type_hints(cls)
    infos = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default, required = f.default, False
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default, required = f.default_factory(), False  # type: ignore[misc]
        else:
            default, required = None, True
        infos.append(OptionInfo(f.name, hints[f.name], default, required, f.metadata.get(_HELP, "")))
    return infos


def build_options(cls: type | None, table: dict[str, Any], where: str) -> tuple[Any, list[str]]:
    """Validate ``table`` against ``cls``; return (instance or None, problems).

    ``where`` prefixes each problem (e.g. ``"exp.toml [backbone]"``).
    """
    infos = {i.name: i for i in describe_options(cls)}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in table.items():
        info = infos.get(key)
        if info is None:
            problems.append(f"{where}: unknown key '{key}'{suggest(key, infos)}")
            continue
        ok, converted, expected = coerce(value, info.type)
        if not ok:
            problems.append(f"{where}: key '{key}' expects {expected}, got {value!r}")
        else:
            values[key] = converted
    for info in infos.values():
        if info.required and info.name not in table:
            problems.append(f"{where}: missing required key '{info.name}' ({info.type_name}: {info.help})")
    if problems or cls is None:
        return None, problems
    try:
        return cls(**values), []
    except (ValueError, TypeError) as exc:  # __post_init__ checks of the component
        return None, [f"{where}: {exc}"]


def suggest(name: str, choices: Any) -> str:
    """A ' (did you mean ...?)' suffix naming the closest of ``choices``, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


# -- types ------------------------------------------------------------------------------

def _origin(tp: Any) -> Any:
    return typing.get_origin(tp)


def _is_union(tp: Any) -> bool:
    return _origin(tp) is Union or isinstance(tp, getattr(types, "UnionType", ()))


def _check_supported(tp: Any, where: str) -> None:
    if tp in (int, float, bool, str, Any):
        return
    if _origin(tp) is Literal:
        return
    if _is_union(tp):
        for arg in typing.get_args(tp):
            if arg is not type(None):
                _check_supported(arg, where)
        return
    if _origin(tp) in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        for arg in args:
            _check_supported(arg, where)
        return
    if _origin(tp) is dict:
        return
    raise TypeError(f"{where}: unsupported option type {tp!r} (use int, float, bool, str, Literal, "
                    "tuple, list, dict or Optional of those)")


def type_name(tp: Any) -> str:
    """A short human name for an option type, as shown by `facebone describe`."""
    if tp is type(None):
        return "none"
    if isinstance(tp, type):
        return {"int": "integer", "float": "float", "bool": "boolean", "str": "string"}.get(tp.__name__, tp.__name__)
    if _origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if _is_union(tp):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if _origin(tp) in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        inner = type_name(args[0]) if args else "any"
        if _origin(tp) is tuple and Ellipsis not in typing.get_args(tp) and len(args) > 1:
            return "[" + ", ".join(type_name(a) for a in args) + "]"
        return f"list of {inner}"
    if _origin(tp) is dict:
        return "table"
    return str(tp)


def coerce(value: Any, tp: Any) -> tuple[bool, Any, str]:
    """Check a TOML value against an option type; return (ok, converted value, expected)."""
    expected = type_name(tp)
    if tp is Any:
        return True, value, expected
    if tp is bool:
        return isinstance(value, bool), value, expected
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value, expected
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value, expected
    if tp is str:
        return isinstance(value, str), value, expected
    if _origin(tp) is Literal:
        return value in typing.get_args(tp) and type(value) in {type(a) for a in typing.get_args(tp)}, value, expected
    if _is_union(tp):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            ok, converted, _ = coerce(value, arg)
            if ok:
                return True, converted, expected
        return False, value, expected
    if _origin(tp) in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value, expected
        args = typing.get_args(tp)
        if _origin(tp) is tuple and args and Ellipsis not in args:
            if len(value) != len(args):
                return False, value, expected
            pairs = list(zip(value, args))
        else:
            inner = args[0] if args else Any
            pairs = [(v, inner) for v in value]
        out = []
        for v, a in pairs:
            ok, converted, _ = coerce(v, a)
            if not ok:
                return False, value, expected
            out.append(converted)
        return True, tuple(out) if _origin(tp) is tuple else out, expected
    if _origin(tp) is dict:
        return isinstance(value, dict), value, expected
    return False, value, expected


def to_toml_value(value: Any) -> Any:
    """Convert an option value back to plain TOML data (tuples become lists)."""
    if isinstance(value, tuple):
        return [to_toml_value(v) for v in value]
    if isinstance(value, list):
        return [to_toml_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_toml_value(v) for k, v in value.items()}
    return value


def options_to_dict(instance: Any) -> dict[str, Any]:
    """The TOML table of an options instance, every default filled in."""
    if instance is None:
        return {}
    return {f.name: to_toml_value(getattr(instance, f.name)) for f in dataclasses.fields(instance)}
