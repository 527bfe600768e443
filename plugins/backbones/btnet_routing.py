"""Which BTNet path serves a face of a given native size (no torch: used at validation time too).

A BTNet serves the trunk size ``T`` (112) and branch sizes ``r = T / 2**k`` (k = 1..4: 56, 28,
14, 7 at 112). A face of native size ``(h, w)`` is routed in two steps (BTNet's SurvFace script,
research/btnet.md §1.6):

* the **resolution indicator** ``ind``: ``max`` = max(h, w), ``avg`` = floor((h + w) / 2),
  ``min`` = min(h, w);
* the **rule** picks one served size ``s`` for ``ind``:

  - ``ceil``: the smallest ``s >= ind`` (faces larger than the trunk size go to the trunk);
  - ``floor``: the largest ``s <= ind`` (faces smaller than the smallest branch go to it);
    the original's command-line name is ``bottom``;
  - ``near``: the ``s`` closest to ``ind``, a tie going to the smaller size.

With the default branches {7, 14, 28} and the trunk at 112 this gives the original's tables
(inclusive intervals of ``ind``): ceil 7:[0,7] 14:[8,14] 28:[15,28] 112:[29,..];
floor 7:[0,13] 14:[14,27] 28:[28,111] 112:[112,..]; near 7:[0,10] 14:[11,21] 28:[22,70]
112:[71,..]. The original drops faces with ``ind > 1000``; here they go to the trunk.
"""
from __future__ import annotations

from typing import Sequence

INDICATORS = ("max", "avg", "min")
RULES = ("ceil", "floor", "near")
RESIZE_FILTERS = ("bicubic", "bilinear", "area", "nearest")


def indicator(h: int, w: int, kind: str = "max") -> int:
    """The resolution indicator of an ``h`` x ``w`` face."""
    if kind == "max":
        return max(int(h), int(w))
    if kind == "min":
        return min(int(h), int(w))
    if kind == "avg":
        return (int(h) + int(w)) // 2
    raise ValueError(f"resolution indicator must be one of {', '.join(INDICATORS)}, got {kind!r}")


def select(ind: int, sizes: Sequence[int], rule: str = "ceil") -> int:
    """The served size (one of ``sizes``) that ``rule`` picks for indicator ``ind``."""
    ordered = sorted(set(int(s) for s in sizes))
    if not ordered:
        raise ValueError("no sizes to route to")
    if rule == "ceil":
        return next((s for s in ordered if s >= ind), ordered[-1])
    if rule == "floor":
        return next((s for s in reversed(ordered) if s <= ind), ordered[0])
    if rule == "near":
        return min(ordered, key=lambda s: (abs(s - ind), s))
    raise ValueError(f"routing rule must be one of {', '.join(RULES)}, got {rule!r}")


def route(h: int, w: int, sizes: Sequence[int], *, indicator_kind: str = "max", rule: str = "ceil") -> int:
    """The served size for an ``h`` x ``w`` face."""
    return select(indicator(h, w, indicator_kind), sizes, rule)


def intervals(sizes: Sequence[int], rule: str, upper: int = 1000) -> dict[int, tuple[int, int]]:
    """Inclusive indicator interval ``(lo, hi)`` that each size serves, for ``0 <= ind <= upper``."""
    out: dict[int, list[int]] = {}
    for ind in range(upper + 1):
        s = select(ind, sizes, rule)
        lo_hi = out.setdefault(s, [ind, ind])
        lo_hi[1] = ind
    return {s: (lo, hi) for s, (lo, hi) in sorted(out.items())}


def branch_stage(trunk_size: int, r: int) -> int | None:
    """The implant stage (1..4) of a branch for ``r`` x ``r`` inputs: the iResNet stage whose
    trunk output is ``r`` x ``r`` (``r = trunk_size / 2**stage``); None if ``r`` is not one."""
    for stage in range(1, 5):
        if trunk_size % (2 ** stage) == 0 and trunk_size // (2 ** stage) == r:
            return stage
    return None


def branch_problems(trunk_size: int, branches: Sequence[int]) -> list[str]:
    """Why ``branches`` cannot be served by a trunk at ``trunk_size`` (empty when they can)."""
    final = trunk_size // 16
    allowed = [trunk_size // 2 ** k for k in range(1, 5)]
    problems = []
    for r in branches:
        if branch_stage(trunk_size, r) is None:
            problems.append(f"branch resolution {r} does not end at {final}x{final} like the trunk at "
                            f"{trunk_size}x{trunk_size}; allowed: {', '.join(map(str, allowed))}")
    if len(set(branches)) != len(branches):
        problems.append(f"branch resolutions {list(branches)} repeat a size")
    return problems
