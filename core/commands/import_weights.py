"""`facebone import-weights SOURCE PATH OUT --backbone NAME`: a foreign .pth -> facebone safetensors."""
from __future__ import annotations

import argparse
import sys

SOURCES: dict[str, str | None] = {  # checkpoint family -> "module:function(state, backbone) -> state" (None: as is)
    "insightface": None,
    "ibug": "facebone.weights.ibug:to_facebone",  # ibug face_embedding: rtnet50, iresnet18/50
}


def convert(source: str, state: dict, backbone: str) -> dict:
    """``state`` with facebone's key names, by the converter ``SOURCES[source]`` names."""
    import importlib

    target = SOURCES[source]
    if target is None:
        return state
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(state, backbone)


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "import-weights", help="convert a foreign checkpoint (InsightFace, ibug .pth) to a facebone safetensors file",
        description="Read an InsightFace backbone.pth / model.pt or an ibug face_embedding .pth with "
                    "torch.load(weights_only=True) (no code is unpickled), map its key names, check every key and "
                    "shape against a facebone backbone, and write safetensors.")
    p.add_argument("source", choices=list(SOURCES), help="checkpoint family")
    p.add_argument("path", help="the .pth / .pt file")
    p.add_argument("out", help="output .safetensors file")
    p.add_argument("--backbone", required=True, metavar="NAME", help="facebone backbone, e.g. iresnet100 or mobilefacenet")
    p.add_argument("--set", action="append", default=[], metavar="backbone.KEY=VALUE", help="backbone option")
    p.add_argument("--embedding-size", type=int, default=None, help="D (default: read from the checkpoint)")
    p.add_argument("--image-size", type=int, default=112, help="input size the weights are for (default 112)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facebone.experiment.overrides import parse_sets
    from facebone.model.build import build_for_state
    from facebone.errors import DataError
    from facebone.plugin.options import options_to_dict
    from facebone.weights.keys import compare, read_torch_state_dict, save_backbone

    from facebone.io import check_output_file

    out = check_output_file(args.out, force=args.force, inputs=(args.path,), what="OUT")
    state = convert(args.source, read_torch_state_dict(args.path), args.backbone)
    table = parse_sets(args.set)
    model = build_for_state(args.backbone, table, state, embedding_size=args.embedding_size,
                            image_size=args.image_size)
    emb = model.embedding_size
    report = compare(state, model.state_dict())
    if not report.ok:
        for line in report.lines():
            print(line, file=sys.stderr)
        raise DataError(f"{args.path}: does not fit backbone '{args.backbone}' ({report.summary()})")
    model.load_state_dict({**{k: model.state_dict()[k] for k in report.filled}, **state}, strict=True)
    from facebone.plugin.discovery import get_plugins

    opts_cls = get_plugins().get("backbone", args.backbone).options
    options = options_to_dict(opts_cls(**table)) if opts_cls is not None else {}
    save_backbone(out, model.state_dict(), backbone=args.backbone, options=options, embedding_size=emb,
                  image_size=args.image_size, source=f"{args.source}:{Path(args.path).name}")
    n = sum(v.numel() for v in state.values())
    extra = f" ({len(report.filled)} BN counters filled)" if report.filled else ""
    print(f"{args.path}: {len(state)} tensors, {n:,} values match {args.backbone} (D={emb}){extra}; wrote {out}")
    return 0
