"""Shared fixtures: in-memory plugins and small experiment files."""
from __future__ import annotations

import dataclasses
import sys
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


@pytest.fixture
def write_toml(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "exp.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
