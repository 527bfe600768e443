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

    from facebone.train.stages import preflight

    exp = load_experiment(args.experiment, args.overrides)
    trains = preflight(exp, num_classes=_num_classes(exp)).line()
    if args.resolved:
        print(f"# {trains}\n" + tomlio.dumps(exp.resolved()), end="")
        return 0
    evals = ", ".join(e.type for e in exp.evals) or "none"
    print(f"{args.experiment}: OK — backbone {exp.backbone.type}, warp {exp.warp.type}, head {exp.head.type}, "
          f"objective {exp.objective.type}, evaluators: {evals}; {trains}")
    return 0


def _num_classes(exp) -> int | None:  # type: ignore[no-untyped-def]
    """The training set's class count when it can be read (it may not exist before a synthetic run)."""
    from facebone.data.dataset import open_source
    from facebone.errors import FaceboneError

    try:
        return int(open_source(exp.data.train).num_classes)
    except (FaceboneError, OSError):
        return None
