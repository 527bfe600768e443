"""The `facebone` command line.

Each sub-command lives in its own module of :mod:`facebone.commands`, which defines
``register(subparsers)``; the parser is assembled from every such module. User errors
(:class:`facebone.errors.FaceboneError`) print one line and exit 2; bugs keep their traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from typing import Sequence

from facebone import __version__
from facebone.errors import FaceboneError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facebone",
        description="Train and evaluate face-recognition backbones from TOML experiments.",
    )
    parser.add_argument("--version", action="version", version=f"facebone {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks, also of plugin errors (sets FACEBONE_DEBUG=1; may follow "
                             "the command too)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import facebone.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"facebone.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _take_debug_flag(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (accepted before or after the command), and whether it was there."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = "--debug" in argv[:end]
    return [a for i, a in enumerate(argv) if not (i < end and a == "--debug")], found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv, debug = _take_debug_flag(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if debug:
        os.environ["FACEBONE_DEBUG"] = "1"
    try:
        result = args.func(args)
    except FaceboneError as exc:
        if os.environ.get("FACEBONE_DEBUG", "").strip() not in ("", "0"):
            traceback.print_exc()
        if not getattr(exc, "quiet", False):  # quiet: another rank of the same run has printed it
            print(f"facebone: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facebone: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
