"""`facebone data ...`: synthetic data, conversion between RecordIO and image folders, info."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facebone.errors import DataError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("data", help="make, convert and inspect data sets",
                                   description="Make, convert and inspect face data sets.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    synth = sub.add_parser("synth", help="generate the synthetic face-like identity data set",
                           description="Write an InsightFace-style RecordIO pack of procedural face-like "
                                       "identities (train.rec, train.idx, property) and holdout.bin, a "
                                       "verification set of pairs from held-out identities.")
    synth.add_argument("out", type=Path, help="output directory")
    synth.add_argument("--identities", type=int, default=300, help="training identities (default 300)")
    synth.add_argument("--images-per-identity", type=int, default=40, help="images per identity (default 40)")
    synth.add_argument("--holdout-identities", type=int, default=100, help="held-out identities (default 100)")
    synth.add_argument("--pairs", type=int, default=2000, help="verification pairs in holdout.bin (default 2000)")
    synth.add_argument("--image-size", type=int, default=40, help="image side in pixels (default 40)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--format", choices=("jpeg", "png"), default="jpeg", help="image encoding (default jpeg)")
    synth.set_defaults(func=_synth)

    convert = sub.add_parser("convert", help="convert RecordIO <-> image folder (bytes and labels kept)",
                             description="Convert a RecordIO pack to an image folder (one sub-folder per "
                                         "label) or an image folder to an InsightFace-style RecordIO pack. "
                                         "Image bytes are copied unchanged.")
    convert.add_argument("src", type=Path, help="RecordIO pack (directory or .rec) or image folder")
    convert.add_argument("dst", type=Path, help="output directory (must not exist or be empty)")
    convert.add_argument("--to", choices=("auto", "folder", "recordio"), default="auto",
                         help="output kind (default: the other kind than SRC)")
    convert.add_argument("--layout", choices=("insightface", "im2rec"), default="insightface",
                         help="RecordIO layout to write (default insightface)")
    convert.set_defaults(func=_convert)

    info = sub.add_parser("info", help="show images, identities, image size and layout of a data set")
    info.add_argument("path", type=Path, help="RecordIO pack, image folder or .bin verification set")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_info)


def _synth(args: argparse.Namespace) -> int:
    from facebone.data.synth import generate_synthetic

    result = generate_synthetic(args.out, identities=args.identities, images_per_identity=args.images_per_identity,
                                holdout_identities=args.holdout_identities, pairs=args.pairs,
                                image_size=args.image_size, seed=args.seed, image_format=args.format)
    state = "reused existing" if result["reused"] else "wrote"
    print(f"{state} synthetic data in {args.out}: {args.identities} identities x {args.images_per_identity} "
          f"images at {args.image_size}px; holdout.bin: {args.pairs} pairs from {args.holdout_identities} "
          "held-out identities")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from facebone.data.convert import convert

    summary = convert(args.src, args.dst, to=args.to, layout=args.layout)
    print(f"converted {summary['images']} images of {summary['num_classes']} classes: "
          f"{args.src} ({summary['from']}) -> {args.dst} ({summary['to']})")
    return 0


def describe(path: Path) -> dict[str, Any]:
    """Facts about a data set (RecordIO pack, image folder or .bin) as a dict."""
    if path.is_file() and path.suffix == ".bin":
        from facebone.data.decode import decode_image
        from facebone.data.verification_bin import load_bin_raw

        bins, same = load_bin_raw(path)
        first = decode_image(bins[0], where=f"{path}: image 0") if bins else None
        return {"path": str(path), "kind": "verification", "pairs": int(len(same)), "same": int(same.sum()),
                "images": len(bins), "image_size": list(first.shape[-2:]) if first is not None else None}
    from facebone.data.dataset import open_source

    src = open_source(path)
    out = {"path": str(path), "kind": "recordio" if src.layout != "folder" else "folder",
           "layout": src.layout, "images": len(src), "identities": int(len(set(src.labels.tolist()))),
           "num_classes": int(src.num_classes), "image_size": list(src.image_size)}
    declared = getattr(src, "property_size", None)
    if declared is not None and tuple(declared) != tuple(src.image_size):
        out["property_image_size"] = list(declared)
    if getattr(src, "skipped", None):
        out["skipped"] = dict(src.skipped)
    if getattr(src, "notes", None):
        out["notes"] = list(src.notes)
    return out


def _info(args: argparse.Namespace) -> int:
    facts = describe(args.path)
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        notes = facts.pop("notes", [])
        width = max(len(k) for k in facts)
        for k, v in facts.items():
            print(f"{k:<{width}}  {'x'.join(map(str, v)) if k.endswith('image_size') and v else v}")
        for note in notes:
            print(f"facebone: note: {note}", file=sys.stderr)
    return 0


__all__ = ["register", "describe", "DataError"]
