"""`facebone export RUN_DIR|CHECKPOINT --onnx OUT.onnx`: ONNX export checked with onnxruntime.

RUN_DIR is a run directory: its resolved experiment builds warp + backbone (the warp is part
of the exported graph) and its last checkpoint supplies the weights.
CHECKPOINT is a safetensors file holding a backbone state dict: one written by `facebone
import-weights` (its metadata names the backbone and its options), or any checkpoint whose
backbone tensors are prefixed ``backbone.`` (a run's ``checkpoints/*.safetensors``, whose
backbone is ``model.backbone.*``, works too), with --backbone NAME and --set options. The
ONNX graph takes ``images`` (N, 3, H, W) in [-1, 1] and returns ``embedding`` (N, D);
onnxruntime's output is compared with PyTorch's and the differences are printed as JSON.
"""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser("export", help="export a backbone checkpoint to ONNX (checked with onnxruntime)",
                              description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("checkpoint", metavar="RUN_DIR|CHECKPOINT", help="run directory, or backbone .safetensors file")
    p.add_argument("--onnx", required=True, metavar="OUT", help="output .onnx file")
    p.add_argument("--backbone", default=None, metavar="NAME", help="backbone name (default: from the file's metadata)")
    p.add_argument("--set", action="append", default=[], metavar="backbone.KEY=VALUE", help="backbone option")
    p.add_argument("--image-size", type=int, default=None, help="input size (default: metadata, else 112)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--resolution", type=int, default=None, metavar="R",
                   help="input side of the graph, for a backbone serving several sizes (btnet: 112, 28, 14 or 7; "
                        "one graph per path; default: the image size)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=run)


def check_onnx_output(args: argparse.Namespace, *inputs) -> None:  # type: ignore[no-untyped-def]
    """Refuse a bad --onnx path or --opset before anything is built."""
    from facebone.io import check_output_file
    from facebone.weights.onnx import check_opset

    check_output_file(args.onnx, force=args.force, inputs=inputs, what="--onnx")
    check_opset(args.opset)


def run(args: argparse.Namespace) -> int:
    from facebone.experiment.overrides import parse_sets
    from facebone.model.build import build_for_state
    from facebone.errors import ConfigError
    from facebone.weights.onnx import export_onnx
    from facebone.weights.keys import load_into, read_safetensors

    from pathlib import Path

    if Path(args.checkpoint).is_dir():
        return export_run(args)
    check_onnx_output(args, args.checkpoint)
    state, meta = read_safetensors(args.checkpoint)
    name = args.backbone or meta.get("backbone")
    if not name:
        raise ConfigError(f"{args.checkpoint}: no backbone in its metadata; pass --backbone NAME")
    table = json.loads(meta["options"]) if meta.get("options") and name == meta.get("backbone") else {}
    table.update(parse_sets(args.set))
    size = args.image_size or int(meta.get("image_size", 112))
    model = build_for_state(name, table, state, image_size=size)
    load_into(model, state, f"{args.checkpoint} ({name})")
    result = export_onnx(model, args.onnx, graph_size(model, size, args.resolution), opset=args.opset)
    print(json.dumps(result))
    return 0


def graph_size(model, image_size: int, resolution: int | None) -> int:  # type: ignore[no-untyped-def]
    """The input side of the exported graph: ``resolution`` must be one the backbone serves."""
    from facebone.errors import ConfigError

    if resolution is None or resolution == image_size:
        return image_size
    backbone = getattr(model, "backbone", model)
    sizes = [int(h) for h, w in getattr(backbone, "input_sizes", None) or () if h == w]
    if resolution not in sizes:
        served = f"it serves {', '.join(map(str, sizes))}" if sizes else f"it serves only {image_size}"
        raise ConfigError(f"--resolution {resolution}: the backbone has no path for {resolution}x{resolution} "
                          f"inputs; {served}")
    return resolution


def export_run(args: argparse.Namespace) -> int:
    """Export warp + backbone of a run directory with its last checkpoint."""
    from pathlib import Path

    from facebone.commands.eval_cmd import latest_checkpoint, model_from_checkpoint, open_run
    from facebone.errors import ConfigError
    from facebone.weights.onnx import export_onnx

    run_dir = Path(args.checkpoint)
    if args.backbone or args.set or args.image_size:
        raise ConfigError(f"{run_dir}: --backbone, --set and --image-size apply to a checkpoint file; a run "
                          "directory's experiment fixes them")
    check_onnx_output(args)
    exp = open_run(run_dir)
    model = model_from_checkpoint(exp, latest_checkpoint(run_dir))
    size = graph_size(model, exp.data.image_size, args.resolution)
    result = export_onnx(model, args.onnx, size, opset=args.opset)
    print(json.dumps(result))
    return 0
