"""`facebone export CHECKPOINT --backbone NAME --onnx OUT.onnx`: ONNX export checked with onnxruntime.

CHECKPOINT is a safetensors file holding a backbone state dict: one written by `facebone
import-weights` (its metadata names the backbone and its options), or any checkpoint whose
backbone tensors are prefixed ``backbone.``, with --backbone NAME and --set options. The
ONNX graph takes ``images`` (N, 3, H, W) in [-1, 1] and returns ``embedding`` (N, D);
onnxruntime's output is compared with PyTorch's and the differences are printed as JSON.
"""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser("export", help="export a backbone checkpoint to ONNX (checked with onnxruntime)",
                              description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("checkpoint", help="backbone .safetensors file")
    p.add_argument("--onnx", required=True, metavar="OUT", help="output .onnx file")
    p.add_argument("--backbone", default=None, metavar="NAME", help="backbone name (default: from the file's metadata)")
    p.add_argument("--set", action="append", default=[], metavar="backbone.KEY=VALUE", help="backbone option")
    p.add_argument("--image-size", type=int, default=None, help="input size (default: metadata, else 112)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facebone.backbones import build_for_state, parse_sets
    from facebone.errors import ConfigError
    from facebone.export import export_onnx
    from facebone.weights import load_into, read_safetensors

    state, meta = read_safetensors(args.checkpoint)
    name = args.backbone or meta.get("backbone")
    if not name:
        raise ConfigError(f"{args.checkpoint}: no backbone in its metadata; pass --backbone NAME")
    table = json.loads(meta["options"]) if meta.get("options") and name == meta.get("backbone") else {}
    table.update(parse_sets(args.set))
    size = args.image_size or int(meta.get("image_size", 112))
    model = build_for_state(name, table, state, image_size=size)
    load_into(model, state, f"{args.checkpoint} ({name})")
    result = export_onnx(model, args.onnx, size, opset=args.opset)
    print(json.dumps(result))
    return 0
