"""`facebone import-weights SOURCE PATH OUT [--backbone NAME]`: a foreign checkpoint -> safetensors."""
from __future__ import annotations

import argparse
import importlib
import sys

SOURCES = {
    "insightface": "facebone.weights.sources.insightface",  # arcface_torch backbone.pth / model.pt
    "ibug": "facebone.weights.sources.ibug",  # ibug face_embedding .pth: rtnet50, iresnet18/50
    "gwp": "facebone.weights.sources.gwp",  # the GWP paper's model.pt (7x7 stem, Gaussian-weighted pooling)
    "gwp-adaface": "facebone.weights.sources.gwp_adaface",  # GWP backbone in AdaFace's layout: Lightning .ckpt
    "comparison": "facebone.weights.sources.comparison",  # ItO210/arcface-backbone-comparative light nets
    "btnet": "facebone.weights.sources.btnet",  # the original BTNet's TNet + one BNet per branch (several files)
}
"""Source name -> module with ``read(path, backbone) -> Imported`` (see facebone.weights.sources); a
module with ``MANY_FILES = True`` reads a list of paths."""


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "import-weights", help="convert a foreign checkpoint (InsightFace, ibug, GWP, AdaFace layout, backbone "
                               "comparison) to a facebone safetensors file",
        description="Read a foreign checkpoint with torch.load(weights_only=True) (no code is unpickled), map its "
                    "keys, check every key and shape against a facebone backbone, and write safetensors. "
                    "Sources: " + ", ".join(SOURCES) + ".")
    p.add_argument("source", choices=list(SOURCES), help="checkpoint family")
    p.add_argument("path", nargs="+", help="the .pth / .pt / .ckpt file (btnet: TNET.pt BNET28.pt BNET14.pt BNET7.pt)")
    p.add_argument("out", help="output .safetensors file")
    p.add_argument("--backbone", metavar="NAME", help="facebone backbone, e.g. iresnet100 (required for insightface and "
                                                      "ibug; others read it from the keys; comparison also takes its "
                                                      "names)")
    p.add_argument("--set", action="append", default=[], metavar="backbone.KEY=VALUE", help="backbone option")
    p.add_argument("--embedding-size", type=int, default=None, help="D (default: read from the checkpoint)")
    p.add_argument("--image-size", type=int, default=112, help="input size the weights are for (default 112)")
    p.add_argument("--classifier", action="store_true",
                   help="keep the checkpoint's class centres: OUT becomes a facebone checkpoint (model.backbone.*, "
                        "classifier.weight)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=run)


def merge_parts(model, imported, paths) -> dict:  # type: ignore[no-untyped-def]
    """The backbone state: ``imported.parts`` merged by the backbone's ``import_state_dicts``, or a
    partial state completed by its ``complete_state_dict`` (facebone.contracts), else as read."""
    from facebone.errors import ConfigError, DataError

    if imported.parts:
        if not hasattr(model, "import_state_dicts"):
            raise ConfigError(f"backbone '{imported.backbone}' cannot merge several checkpoints")
        try:
            return model.import_state_dicts([imported.state, *imported.parts], [str(p) for p in paths])
        except ValueError as exc:
            raise DataError(str(exc)) from None
    complete = getattr(model, "complete_state_dict", None)
    return complete(imported.state) if complete is not None else imported.state


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facebone.errors import ConfigError, DataError
    from facebone.experiment.overrides import parse_sets
    from facebone.model.build import build_for_state
    from facebone.plugin.options import options_to_dict
    from facebone.weights.keys import compare
    from facebone.weights.sources import drop_unused, write

    from facebone.io import check_output_file

    paths = [Path(p) for p in args.path]
    out = check_output_file(args.out, force=args.force, inputs=tuple(args.path), what="OUT")
    source = importlib.import_module(SOURCES[args.source])
    if getattr(source, "MANY_FILES", False):
        imported = source.read(paths, args.backbone)
    elif len(paths) != 1:
        raise ConfigError(f"import-weights {args.source} takes one PATH, then OUT; got {len(paths)} paths")
    else:
        imported = source.read(paths[0], args.backbone)
    args.path = " + ".join(args.path)
    name, table = imported.backbone, {**imported.options, **parse_sets(args.set)}
    model = build_for_state(name, table, imported.state, embedding_size=args.embedding_size,
                            image_size=args.image_size)
    state, dropped = drop_unused(model, merge_parts(model, imported, paths), args.path)
    emb = model.embedding_size
    report = compare(state, model.state_dict())
    if not report.ok:
        for line in report.lines():
            print(line, file=sys.stderr)
        raise DataError(f"{args.path}: does not fit backbone '{name}' ({report.summary()})")
    model.load_state_dict({**{k: model.state_dict()[k] for k in report.filled}, **state}, strict=True)
    classifier = imported.classifier if args.classifier else None
    if args.classifier and (classifier is None or classifier.shape[1] != emb):
        raise ConfigError(f"{args.path}: --classifier: " + ("the checkpoint has no class centres" if classifier is None
                          else f"class centres of size {classifier.shape[1]}, embedding size {emb}"))
    from facebone.plugin.discovery import get_plugins

    opts_cls = get_plugins().get("backbone", name).options
    options = options_to_dict(opts_cls(**table)) if opts_cls is not None else {}
    write(out, model.state_dict(), classifier, backbone=name, options=options, embedding_size=emb,
          image_size=args.image_size, source=f"{args.source}:" + " + ".join(p.name for p in paths))
    for note in imported.notes + dropped:
        print(f"{args.path}: {note}")
    n = sum(v.numel() for v in state.values())
    extra = f" ({len(report.filled)} BN counters filled)" if report.filled else ""
    kept = f", {classifier.shape[0]} class centres" if classifier is not None else ""
    print(f"{args.path}: {len(state)} tensors, {n:,} values match {name} (D={emb}){extra}{kept}; wrote {out}")
    return 0
