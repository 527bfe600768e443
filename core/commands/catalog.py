"""`facebone list`, `facebone describe` and `facebone plugins`: what is installed."""
from __future__ import annotations

import argparse

from facebone.plugin.registry import KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered components",
                       description="List components. KIND is backbone(s), head(s), warp(s), evaluator(s) or "
                                   "objective(s); PATTERN is a wildcard such as 'iresnet*'.")
    p.add_argument("kind", nargs="?", help="component kind (default: all kinds), or a pattern")
    p.add_argument("pattern", nargs="?", help="wildcard filter on names, e.g. 'iresnet*'")
    p.set_defaults(func=list_components)

    p = sub.add_parser("describe", help="show a component's summary and options")
    p.add_argument("kind", help="component kind")
    p.add_argument("name", help="component name")
    p.set_defaults(func=describe)

    p = sub.add_parser("plugins", help="every plugin with its distribution, version, components and failures")
    p.set_defaults(func=plugins)


def _kinds_and_pattern(args: argparse.Namespace) -> tuple[list[str], str | None]:
    from facebone.plugin.registry import normalise_kind

    if args.kind is None:
        return list(KINDS), None
    try:
        return [normalise_kind(args.kind)], args.pattern
    except Exception:  # not a kind: treat it as a pattern over every kind
        if args.pattern is not None:
            raise
        return list(KINDS), args.kind


def list_components(args: argparse.Namespace) -> int:
    from facebone.plugin.discovery import get_plugins

    reg = get_plugins()
    kinds, pattern = _kinds_and_pattern(args)
    for kind in kinds:
        comps = [c for c in reg.registry(kind) if c.name in reg.registry(kind).names(pattern)]
        print(f"{kind}s:")
        if not comps:
            print("  (none)")
        width = max((len(c.name) for c in comps), default=0)
        for c in comps:
            print(f"  {c.name:<{width}}  {c.summary}  [{c.provider.dist}]")
    if reg.failures:
        print(f"\n{len(reg.failures)} plugin(s) failed to load; see `facebone plugins`")
    return 0


def describe(args: argparse.Namespace) -> int:
    from facebone.plugin.discovery import get_plugins
    from facebone.plugin.options import describe_options

    comp = get_plugins().get(args.kind, args.name)
    print(f"{comp.kind} {comp.name}: {comp.summary}")
    print(f"provided by {comp.provider}")
    infos = describe_options(comp.options)
    if not infos:
        print("options: none")
    else:
        print("options:")
        rows = [(i.name, i.type_name, "(required)" if i.required else repr(i.default), i.help) for i in infos]
        widths = [max(len(r[j]) for r in rows) for j in range(3)]
        for r in rows:
            print(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  default {r[2]:<{widths[2]}}  {r[3]}")
    extra = _complexity_lines(comp)
    for line in extra:
        print(line)
    return 0


def _complexity_lines(comp) -> list[str]:  # type: ignore[no-untyped-def]
    """Parameters and FLOPs of a backbone with default options at its input size."""
    if comp.kind != "backbone":
        return []
    from facebone.model.build import build_backbone
    from facebone.model.complexity import count, describe_lines

    size = 112
    model = build_backbone(comp.qualified_name, embedding_size=512, image_size=size)
    lines = [f"at {size}x{size} with default options and 512-D embeddings:"] + [
        "  " + line for line in describe_lines(count(model, size), size)]
    if hasattr(model, "complexity_table"):  # a backbone with several paths: one row each
        from facebone.model.complexity import table_lines

        lines += ["per path (params: learnable, BN running statistics excluded; GMACs of a forward at its input):"]
        lines += ["  " + line for line in table_lines(model)]
    return lines


def plugins(args: argparse.Namespace) -> int:
    from facebone.plugin.discovery import get_plugins

    reg = get_plugins()
    for info in reg.loaded:
        comps = ", ".join(f"{k} {n}" for k, n in info.components) or "no components"
        print(f"{info.provider.plugin}: {info.provider.dist} {info.provider.version} ({info.provider.module}) -> {comps}")
    for kind in KINDS:
        for name, comps in reg.registry(kind).duplicates().items():
            who = " and ".join(str(c.provider) for c in comps)
            print(f"DUPLICATE {kind} '{name}': provided by {who}; pick one as dist:name")
    for f in reg.failures:
        print(f"FAILED {f.provider.plugin}: {f.provider.dist} {f.provider.version} ({f.provider.module}) "
              f"at {f.stage}: {f.error}")
    return 0
