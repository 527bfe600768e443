"""`facebone embed RUN_DIR PATH... --out FEATS.{npy,safetensors,csv}`: embed image files with a trained model.

PATHs are image files and folders (searched recursively). Each face gets one row: .npy (with
a FEATS.npy.json manifest naming the rows), .safetensors (the manifest in its metadata) or .csv
(path and face columns). --boxes / --landmarks tables place the faces (several rows of one
image: several faces), otherwise each image is an aligned crop. An image
that cannot be read or placed is reported by name and skipped; the others are embedded and
written, and the command then exits with status 1. An existing --out is refused unless
--overwrite, which replaces only a file that facebone embed wrote. With --onnx the model runs in
ONNX Runtime (a graph from `facebone export`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by `facebone embed` and `facebone verify`."""
    p.add_argument("run", metavar="RUN_DIR", help="run directory (or one of its checkpoints, or an imported backbone)")
    p.add_argument("--checkpoint", default=None, help="checkpoint to use (default: the run's latest)")
    p.add_argument("--onnx", default=None, metavar="MODEL.onnx",
                   help="run this ONNX graph (from `facebone export`) in ONNX Runtime instead of PyTorch")
    faces = p.add_mutually_exclusive_group()
    faces.add_argument("--boxes", default=None, metavar="FILE.csv", help="face boxes: path,x1,y1,x2,y2[,angle] per face")
    faces.add_argument("--landmarks", default=None, metavar="FILE.csv", help="five landmarks: path,x1,y1,...,x5,y5 per face")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None,
                   help="PyTorch precision (default: the run's [embed] precision)")
    p.add_argument("--batch-size", type=int, default=None, help="faces per batch (default: the run's [embed])")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: the run's [train] device)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the library's)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the frozen graph")
    p.add_argument("--workers", type=int, default=1, help="threads reading images ahead of the network (default 1)")


def load_predictor(args: argparse.Namespace) -> Any:
    from facebone.predict.predictor import load

    return load(args.run, device=args.device, precision=args.precision, batch_size=args.batch_size,
                checkpoint=args.checkpoint, onnx=args.onnx, threads=args.threads, compile=args.compile,
                workers=args.workers)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed image files with a trained model",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    add_model_arguments(p)
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders")
    p.add_argument("--out", required=True, metavar="FEATS", help="output .npy, .safetensors or .csv")
    p.add_argument("--raw", action="store_true", help="raw (flip-summed) embeddings instead of L2-normalised ones")
    p.add_argument("--overwrite", "--force", action="store_true",
                   help="replace --out if facebone embed wrote it (never any other file)")
    p.set_defaults(func=embed)


def faces_of(files: list[Path], table: str | None, kind: str | None) -> tuple[list[Path], list[Any], list[int],
                                                                          list[str], list[str]]:
    """``(images, face values or None, face index, names, problems)``: one entry per face."""
    from facebone.predict.outputs import read_face_table

    if table is None:
        return files, [None] * len(files), [0] * len(files), [str(f) for f in files], []
    rows = read_face_table(table, kind)  # type: ignore[arg-type]
    by_path: dict[Path, list[Any]] = {}
    for row in rows:
        by_path.setdefault(row.path, []).append(row)
    images, values, index, names, problems = [], [], [], [], []
    given = set()
    for f in files:
        key = f.resolve()
        given.add(key)
        found = by_path.get(key)
        if not found:
            problems.append(f"{f}: no row in {table}")
        for i, row in enumerate(found or []):
            images.append(f)
            values.append(row.values)
            index.append(i)
            names.append(f"{f} ({Path(table).name} line {row.line})")
    unused = sum(len(v) for k, v in by_path.items() if k not in given)
    if unused:
        print(f"facebone: note: {unused} rows of {table} name images not among the PATHs; ignored", file=sys.stderr)
    return images, values, index, names, problems


def embed(args: argparse.Namespace) -> int:
    from facebone import __version__
    from facebone.errors import ConfigError
    from facebone.predict.images import expand_paths
    from facebone.predict.outputs import check_output, write_embeddings
    from facebone.progress import Progress

    out = Path(args.out)
    check_output(out, args.overwrite, inputs=(args.boxes, args.landmarks))
    files = expand_paths(args.paths)
    if not files:
        raise ConfigError(f"no image files in {' '.join(args.paths)}")
    kind = "box" if args.boxes else "landmarks" if args.landmarks else None
    images, values, index, names, problems = faces_of(files, args.boxes or args.landmarks, kind)
    predictor = load_predictor(args)
    print(f"facebone: {predictor}", file=sys.stderr)
    where = {"boxes": values} if kind == "box" else {"landmarks": values} if kind else {}
    with Progress(len(images), "embed", unit="img") as bar:
        report = predictor.embed_report(images, names=names, normalize=not args.raw, progress=bar.update,
                                        **where) if images else None
    failed = problems + (list(report.errors.values()) if report is not None else [])
    for line in failed:
        print(f"facebone: failed: {line}", file=sys.stderr)
    ok = report.ok if report is not None else []
    rows = [i for i, good in enumerate(ok) if good]
    if not rows:
        print(f"facebone: error: no image could be embedded; {out} not written", file=sys.stderr)
        return 1
    net = predictor.network
    manifest = {"facebone": __version__, "run": predictor.facts.source,
                "checkpoint": str(predictor.facts.checkpoint) if predictor.facts.checkpoint else None,
                "backend": net.describe(), "normalized": not args.raw, "flip": predictor.flip,
                "faces_from": {"box": f"boxes {args.boxes}", "landmarks": f"landmarks {args.landmarks}"}.get(
                    kind or "", "aligned crops"),
                "failed": failed}
    written = write_embeddings(out, report.embeddings[rows], [str(images[i]) for i in rows],
                               [index[i] for i in rows], manifest)
    print(f"{len(rows)} embeddings ({predictor.embedding_size}-d) -> {', '.join(map(str, written))}")
    if failed:
        print(f"facebone: {len(failed)} of {len(failed) + len(rows)} faces failed (listed above)", file=sys.stderr)
        return 1
    return 0
