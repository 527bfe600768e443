"""The wheel holds every module: built, installed non-editable into a temporary target, imported."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]

IMPORT_ALL = r"""
import importlib, json, os, pkgutil, sys
target, site = sys.argv[1], sys.argv[2]
sys.path[:0] = [target, *site.split(os.pathsep)]
import facebone
assert facebone.__file__.startswith(target), facebone.__file__
names = sorted(m.name for m in pkgutil.walk_packages(facebone.__path__, "facebone.") if not m.name.endswith("__main__"))
for name in names:
    module = importlib.import_module(name)
    assert module.__file__.startswith(target), (name, module.__file__)
from facebone.plugin.discovery import load_plugins
plugins = load_plugins()
print(json.dumps({"modules": names, "failures": [str(f.error) for f in plugins.failures],
                  "backbones": plugins.registry("backbone").names()}))
"""


def source_modules() -> set[str]:
    found = set()
    for root, package in (("core", "facebone"), ("plugins", "facebone.plugins")):
        for path in (ROOT / root).rglob("*.py"):
            rel = path.relative_to(ROOT / root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if parts and parts[-1] == "__main__":
                continue
            found.add(".".join([package, *parts]))
    return found - {"facebone", "facebone.plugins"} | {"facebone.plugins"}


def test_wheel_installs_every_module(tmp_path: Path) -> None:
    wheels, target, source = tmp_path / "wheels", tmp_path / "target", tmp_path / "source"
    # a copy of the sources, so no earlier build/ folder can hide a package missing from the wheel
    for name in ("core", "plugins"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("facebone-*.whl")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    # -S: no .pth processing, so the editable install's finder cannot supply facebone; the site
    # directories this process sees (torch and the other dependencies) are passed explicitly
    site = os.pathsep.join(p for p in sys.path if p.endswith("site-packages")) or sysconfig.get_paths()["purelib"]
    out = subprocess.run([sys.executable, "-S", "-c", IMPORT_ALL, str(target), site], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    assert "iresnet50" in report["backbones"]
    missing = source_modules() - set(report["modules"])
    assert not missing, f"modules missing from the wheel: {sorted(missing)}"
