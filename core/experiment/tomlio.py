"""Reading and writing TOML. Reading uses :mod:`tomllib` (``tomli`` before Python 3.11);
writing covers what experiments hold: scalars, arrays, tables, sub-tables, arrays of tables."""
from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOMLDecodeError = tomllib.TOMLDecodeError
loads = tomllib.loads

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_value(text: str) -> Any:
    """A command-line value: parsed as TOML (``0.1``, ``true``, ``[1, 2]``, ``"x"``), else the bare text."""
    try:
        return loads(f"v = {text.strip()}")["v"]
    except TOMLDecodeError:
        return text.strip()


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} value {v!r} as TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(lines: list[str], name: str, table: dict[str, Any], header: str | None) -> None:
    if header is not None:
        lines.append(header)
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)}
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in table.items():
        path = f"{name}.{_key(k)}" if name else _key(k)
        if isinstance(v, dict):
            lines.append("")
            _table(lines, path, v, f"[{path}]")
        elif _is_table_array(v):
            for item in v:
                lines.append("")
                _table(lines, path, item, f"[[{path}]]")


def dumps(data: dict[str, Any]) -> str:
    """Serialise ``data`` to TOML text that :func:`loads` reads back equal."""
    lines: list[str] = []
    _table(lines, "", data, None)
    return "\n".join(lines).lstrip("\n") + "\n"
