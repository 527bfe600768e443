"""The one ``--set table.key=value`` grammar, for experiments and for commands that build a backbone.

Values are parsed as TOML (a bare word is taken as a string); ``eval.N.key`` addresses the N-th
``[[eval]]`` table (from 0).
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

from facebone.errors import ConfigError
from facebone.experiment import tomlio


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], source: str) -> dict[str, Any]:
    """Apply ``table.key=value`` overrides (value parsed as TOML, else taken as a string).

    ``eval.N.key`` addresses the N-th ``[[eval]]`` table (from 0).
    """
    raw = copy.deepcopy(raw)
    problems = []
    for item in overrides:
        if "=" not in item:
            problems.append(f"--set {item!r}: expected table.key=value")
            continue
        dotted, text = item.split("=", 1)
        parts = [p.strip() for p in dotted.strip().split(".")]
        if len(parts) < 2 or not all(parts):
            problems.append(f"--set {item!r}: expected table.key=value (e.g. train.lr=0.05)")
            continue
        value = tomlio.parse_value(text)
        node: Any = raw
        ok = True
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    problems.append(f"--set {item!r}: '{'.'.join(parts[:i])}' has {len(node)} entries; "
                                    f"'{part}' is not a valid index")
                    ok = False
                    break
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                problems.append(f"--set {item!r}: '{'.'.join(parts[: i + 1])}' is not a table")
                ok = False
                break
        if ok:
            if isinstance(node, list):
                problems.append(f"--set {item!r}: '{'.'.join(parts[:-1])}' is a list of tables; "
                                f"address one as {parts[0]}.0.{parts[-1]}")
            else:
                node[parts[-1]] = value
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return raw


def parse_sets(items: Sequence[str] | None, table: str = "backbone") -> dict[str, Any]:
    """``["backbone.pooling=gwp", "width=32"]`` -> ``{"pooling": "gwp", "width": 32}``: the same grammar
    as :func:`apply_overrides`, for commands that take only ``[table]`` keys (the prefix may be left out)."""
    prefixed = []
    for item in items or []:
        key = item.partition("=")[0].strip()
        prefixed.append(item if "." in key else f"{table}.{item.strip()}")
    raw = apply_overrides({}, prefixed, "command line")
    others = sorted(set(raw) - {table})
    if others:
        raise ConfigError(f"--set: only [{table}] keys can be set here, not [{others[0]}]")
    return dict(raw.get(table, {}))
