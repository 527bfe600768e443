"""The `facebone` command line.

Each sub-command lives in its own module of :mod:`facebone.commands`, which defines
``register(subparsers)``; the parser is assembled from every such module. User errors
(:class:`facebone.errors.FaceboneError`) print one line and exit 2; bugs keep their traceback.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from facebone import __version__
from facebone.errors import FaceboneError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facebone",
        description="Train and evaluate face-recognition backbones from TOML experiments.",
    )
    parser.add_argument("--version", action="version", version=f"facebone {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import facebone.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"facebone.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except FaceboneError as exc:
        if not getattr(exc, "quiet", False):  # quiet: another rank of the same run has printed it
            print(f"facebone: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facebone: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
