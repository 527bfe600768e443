"""Build a registered backbone outside a run (commands: export, import-weights, compare-complexity).

``build_backbone("iresnet50", {"pooling": "gwp"}, embedding_size=512, image_size=112)``
validates the options exactly like an experiment's ``[backbone]`` table does.
"""
from __future__ import annotations

from typing import Any

from facebone.errors import ConfigError


def parse_sets(items: list[str] | None, table: str = "backbone") -> dict[str, Any]:
    """``["backbone.pooling=gwp", "backbone.width=32"]`` -> ``{"pooling": "gwp", "width": 32}``.

    Values are parsed as TOML (strings may be left unquoted). A key outside ``table`` is an error.
    """
    from facebone.tomlio import parse_value

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected {table}.key=value")
        tbl, dot, name = key.rpartition(".")
        if dot and tbl != table:
            raise ConfigError(f"--set {item!r}: only [{table}] keys can be set here")
        out[name] = parse_value(raw)
    return out


def build_backbone(name: str, table: dict[str, Any] | None = None, *, embedding_size: int = 512,
                   image_size: int = 112, plugins: Any = None) -> Any:
    """The backbone ``name`` built with options ``table`` (validated); ConfigError on bad options."""
    from facebone.discovery import get_plugins
    from facebone.options import build_options

    comp = (plugins or get_plugins()).get("backbone", name)
    options, problems = build_options(comp.options, dict(table or {}), f"[backbone] type = {name!r}")
    if problems:
        raise ConfigError(problems)
    return comp.factory(options, embedding_size=embedding_size, image_size=image_size)


def build_for_state(name: str, table: dict[str, Any], state: dict[str, Any], *, embedding_size: int | None = None,
                    image_size: int = 112) -> Any:
    """Build backbone ``name`` with the embedding size found in ``state`` (unless given)."""
    from facebone.weights import embedding_size_of

    model = build_backbone(name, table, embedding_size=embedding_size or 512, image_size=image_size)
    found = embedding_size or embedding_size_of(state, model.state_dict()) or 512
    if found != model.embedding_size:
        model = build_backbone(name, table, embedding_size=found, image_size=image_size)
    return model
