"""`facebone compare-complexity NAME...`: parameters, MACs and FLOPs of several backbones."""
from __future__ import annotations

import argparse
import json
import re


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "compare-complexity", help="table of parameters and FLOPs for several backbones",
        description="Parameters and compute (torch.utils.flop_counter) of backbones at one input size. "
                    "FLOPs = 2 x multiply-accumulates (MACs); InsightFace's 'GFLOPs' are MACs.")
    p.add_argument("names", nargs="+", metavar="NAME", help="backbone names or wildcard patterns ('iresnet*')")
    p.add_argument("--image-size", type=int, default=112, help="input height = width (default 112)")
    p.add_argument("--embedding-size", type=int, default=512, help="embedding size D (default 512)")
    p.add_argument("--set", action="append", default=[], metavar="backbone.KEY=VALUE",
                   help="option for every listed backbone that has it (e.g. backbone.pooling=gwp)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _natural(name: str) -> list:  # type: ignore[type-arg]
    """'iresnet18' < 'iresnet100': compare digit runs as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _expand(names: list[str]) -> list[str]:
    from facebone.plugin.discovery import get_plugins

    reg = get_plugins().registry("backbone")
    out: list[str] = []
    for n in names:
        matched = sorted(reg.names(n), key=_natural) if any(ch in n for ch in "*?[") else [n]
        if not matched:
            reg.get(n)  # raises a PluginError naming close matches
        out.extend(m for m in matched if m not in out)
    return out


def _applicable(name: str, table: dict) -> dict:  # type: ignore[type-arg]
    from facebone.plugin.discovery import get_plugins
    from facebone.plugin.options import describe_options

    known = {i.name for i in describe_options(get_plugins().get("backbone", name).options)}
    return {k: v for k, v in table.items() if k in known}


def run(args: argparse.Namespace) -> int:
    import torch

    from facebone.experiment.overrides import parse_sets
    from facebone.model.build import build_backbone
    from facebone.model.complexity import count, format_row

    table = parse_sets(args.set)
    rows, results = [], {}
    for name in _expand(args.names):
        with torch.device("cpu"):
            model = build_backbone(name, _applicable(name, table), embedding_size=args.embedding_size,
                                   image_size=args.image_size)
        c = count(model, args.image_size)
        results[name] = c
        rows.append(format_row(name, c))
        del model
    if args.json:
        print(json.dumps({"image_size": args.image_size, "unit": "flops = 2 x macs", "backbones": results}, indent=2))
        return 0
    header = ("backbone", "params", "MACs", "FLOPs")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(f"input {args.image_size}x{args.image_size}; FLOPs = 2 x MACs (InsightFace's 'GFLOPs' are MACs)")
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return 0
