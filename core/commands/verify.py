"""`facebone verify RUN_DIR IMG1 IMG2 [--far 1e-3]`: same identity or not, at the run's own threshold.

Prints the cosine similarity of the two faces, the threshold and where it came from (by
default the threshold at --far on the run's saved verification scores, the image-pair set with
the most impostor pairs; --on picks a set, --threshold gives one), and the decision. --boxes /
--landmarks tables (rows for IMG1 and IMG2) place the faces; otherwise both are aligned crops.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from facebone.commands.embed import add_model_arguments, load_predictor


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="decide whether two face images show the same identity",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    add_model_arguments(p)
    p.add_argument("image1", metavar="IMG1")
    p.add_argument("image2", metavar="IMG2")
    p.add_argument("--far", type=float, default=1e-3, help="false accept rate of the threshold (default 1e-3)")
    p.add_argument("--on", default=None, metavar="SET", help="saved score set the threshold comes from "
                                                             "(e.g. holdout or verification/holdout)")
    p.add_argument("--threshold", type=float, default=None, help="use this cosine threshold instead")
    p.set_defaults(func=verify)


def verify(args: argparse.Namespace) -> int:
    from facebone.commands.embed import faces_of
    from facebone.errors import DataError

    files = [Path(args.image1), Path(args.image2)]
    for f in files:
        if not f.is_file():
            raise DataError(f"{f}: image not found")
    kind = "box" if args.boxes else "landmarks" if args.landmarks else None
    images, values, _, names, problems = faces_of(files, args.boxes or args.landmarks, kind)
    if problems:
        raise DataError(problems[0])
    if len(images) != 2:
        raise DataError(f"{args.boxes or args.landmarks}: expected one row for each of the two images, found "
                        f"{len(images)} rows")
    predictor = load_predictor(args)
    threshold = None if args.threshold is not None else predictor.threshold(args.far, args.on)
    where = {"boxes": values} if kind == "box" else {"landmarks": values} if kind else {}
    report = predictor.embed_report(images, names=names, **where)
    if report.errors:
        raise DataError(next(iter(report.errors.values())))
    emb = report.embeddings
    result = predictor.verify(emb[0], emb[1], threshold=args.threshold if threshold is None else threshold.value)
    source = "given with --threshold" if threshold is None else threshold.source()
    print(f"similarity  {result.similarity:.4f}")
    print(f"threshold   {result.threshold:.4f}")
    print(f"source      {source}")
    print(f"decision    {'same identity' if result.same else 'different identities'}")
    return 0
