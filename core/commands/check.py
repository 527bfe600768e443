"""`facebone check EXP.toml`: validate without running."""
from __future__ import annotations

import argparse

from facebone.commands.run import add_set_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate an experiment without running it")
    p.add_argument("experiment", help="experiment TOML file")
    add_set_argument(p)
    p.add_argument("--resolved", action="store_true", help="print the resolved configuration (every default)")
    p.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    from facebone.experiment import tomlio
    from facebone.experiment.config import load_experiment

    exp = load_experiment(args.experiment, args.overrides)
    if args.resolved:
        print(tomlio.dumps(exp.resolved()), end="")
        return 0
    evals = ", ".join(e.type for e in exp.evals) or "none"
    print(f"{args.experiment}: OK — backbone {exp.backbone.type}, warp {exp.warp.type}, head {exp.head.type}, "
          f"evaluators: {evals}")
    return 0
