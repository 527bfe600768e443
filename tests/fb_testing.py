"""Test helpers shared across test modules: in-memory plugins, a tiny backbone, CLI runners."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import types
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import facebone
from facebone import option

ROOT = Path(__file__).resolve().parents[1]


class FakeDist:
    """Stands in for an importlib.metadata Distribution (name and version only)."""

    def __init__(self, name: str, version: str):
        self.metadata = {"Name": name}
        self.version = version


def make_entry_point(name: str, module_name: str, dist: str = "thirdparty", version: str = "1.0") -> Any:
    ep = EntryPoint(name=name, value=module_name, group="facebone")
    try:
        return ep._for(FakeDist(dist, version))  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - older importlib.metadata
        object.__setattr__(ep, "dist", FakeDist(dist, version))
        return ep


def install_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> types.ModuleType:
    """Put a module made of ``attrs`` into sys.modules (undone after the test)."""
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


@dataclasses.dataclass(frozen=True, kw_only=True)
class TinyOptions:
    width: int = option(8, "channels")


def build_tiny(options: TinyOptions, *, embedding_size: int, image_size: int, **runtime: Any):  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding_size = embedding_size
            self.input_size = (image_size, image_size)
            self.conv = nn.Conv2d(3, options.width, 3, stride=2, padding=1)
            self.fc = nn.Linear(options.width, embedding_size)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    return Tiny()


@facebone.hookimpl
def _tiny_backbones(registry):  # type: ignore[no-untyped-def]
    registry.add("tiny", build_tiny, options=TinyOptions, summary="A tiny test backbone")


def facebone(*args, env=None, cwd=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "facebone", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=600)


def install_distribution(site: Path, dist: str, version: str, module: str, source: str,
                         entry_points: dict[str, str]) -> None:
    """Install a one-module distribution into ``site``: the module, and a dist-info whose
    entry points (group ``facebone``) map names to modules."""
    pkg = site / module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text("[facebone]\n" + lines)


THIRDNET = '''
        import dataclasses
        import facebone

        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Options:
            width: int = facebone.option(8, "channels")

        def build(options, *, embedding_size, image_size, **runtime):
            import torch
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embedding_size = embedding_size
                    self.input_size = (image_size, image_size)
                    self.conv = nn.Conv2d(3, options.width, 3, stride=2, padding=1)
                    self.fc = nn.Linear(options.width, embedding_size)

                def forward(self, x):
                    return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

            return Net()

        @facebone.hookimpl
        def facebone_backbones(registry):
            registry.add("thirdnet", build, options=Options, summary="A third-party test backbone")
'''


def make_third_party(site: Path, broken: bool = False) -> None:
    """A third-party plugin distribution installed into ``site`` (a dist-info with an entry point)."""
    entry_points = {"thirdnet": "fb_thirdparty"}
    if broken:
        entry_points["brokennet"] = "fb_missing_module"
    install_distribution(site, "fb-thirdparty", "0.7", "fb_thirdparty", THIRDNET, entry_points)
