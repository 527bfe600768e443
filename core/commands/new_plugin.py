"""`facebone new-plugin NAME --kind KIND`: write a pip-installable plugin package skeleton."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from facebone.errors import ConfigError

KINDS = ("backbone", "head", "warp", "evaluator", "objective")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("new-plugin", help="write a plugin package skeleton (pyproject, module, README, tests)",
                       description="Write NAME/ (or --dir): a pip-installable package registering one component "
                                   "of KIND named NAME through the 'facebone' entry point, with tests that pass "
                                   "as generated (facebone's contract checks plus one behaviour test).")
    p.add_argument("name", help="component and Python package name (lower case, digits, underscores)")
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--dir", help="where to write the package (default: ./NAME); must not exist")
    p.set_defaults(func=new_plugin)


def plugin_files(name: str, kind: str, dist_dir: str) -> dict[str, str]:
    """Relative path -> text of every file of the package."""
    from facebone.plugin import templates as T

    dist = name.replace("_", "-")
    fill = {"name": name, "dist": dist, "kind": kind, "dist_dir": dist_dir}
    return {
        "pyproject.toml": T.PYPROJECT.format(**fill),
        "README.md": T.README.format(**fill, usage=T.USAGE[kind].format(**fill)),
        f"src/{name}/__init__.py": T.SOURCES[kind].format(**fill),
        f"tests/test_{name}.py": T.TEST.format(**fill, behaviour=T.BEHAVIOUR[kind].format(**fill)),
    }


def new_plugin(args: argparse.Namespace) -> int:
    name, kind = args.name, args.kind
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) or name == "facebone":
        raise ConfigError(f"plugin name {name!r}: use lower-case letters, digits and underscores, starting with a letter")
    out = Path(args.dir or name)
    if out.exists():
        raise ConfigError(f"{out}: already exists; choose another name or --dir (nothing was written)")
    files = plugin_files(name, kind, str(out))
    staging = out.with_name(f".{out.name}.new")
    if staging.exists():
        raise ConfigError(f"{staging}: left over from an interrupted new-plugin; remove it first")
    for rel, text in files.items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    staging.rename(out)  # the package appears whole, or not at all
    print(f"wrote {kind} plugin '{name}' to {out}/")
    print(f"next: pip install ./{out} && python -m pytest {out}/tests && facebone describe {kind} {name}")
    return 0
