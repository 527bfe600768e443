"""Option checks shared by the head registration modules (no torch import).

Each raises ``ValueError`` with one line naming the key; option validation turns it into
``EXP.toml [head] (head 'NAME'): key 'margin' must be ...``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping


def positive(key: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"key '{key}' must be positive, got {value}")


def non_negative(key: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"key '{key}' must be >= 0 (a negative value would be a bonus, not a margin), "
                         f"got {value}")


def in_range(key: str, value: float, low: float, high: float, *, closed_high: bool = False,
             high_name: str | None = None) -> None:
    """``low <= value < high`` (``<= high`` when ``closed_high``)."""
    ok = low <= value <= high if closed_high else low <= value < high
    if not ok:
        bracket = "]" if closed_high else ")"
        raise ValueError(f"key '{key}' must be in [{low:g}, {high_name or f'{high:g}'}{bracket}, got {value}")


def angular_margin(key: str, value: float) -> None:
    """An additive angle in radians: [0, pi/2)."""
    in_range(key, value, 0.0, math.pi / 2, high_name="pi/2")


def momentum(key: str, value: float) -> None:
    """An EMA weight of the new batch statistic: (0, 1]."""
    if not 0 < value <= 1:
        raise ValueError(f"key '{key}' must be in (0, 1] (the weight of the new batch statistic), got {value}")


def classifier_subcenters(experiment: Any) -> Any:
    """``[classifier] subcenters`` of a resolved experiment (a dict of tables, or an object with
    attributes), ``None`` when there is no classifier table, ``"missing"`` when it lacks the key."""
    table = experiment.get("classifier") if isinstance(experiment, Mapping) else getattr(experiment, "classifier", None)
    if table is None:
        return None
    if isinstance(table, Mapping):
        return table.get("subcenters", "missing")
    return getattr(table, "subcenters", "missing")
