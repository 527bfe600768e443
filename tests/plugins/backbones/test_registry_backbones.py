"""Registry-driven contract tests: every backbone any installed plugin registers.

A new backbone is tested here without writing a test. The heaviest built-in nets (listed
in ``SLOW``) run under ``-m slow``; their layout and loading are tested cheaply elsewhere.
"""
from __future__ import annotations

import pytest

from facebone.plugin.discovery import load_plugins
from facebone.testing import check_backbone

SLOW = {"iresnet50", "iresnet100", "iresnet200",  # > 5 GMACs per image: seconds per step on a shared CPU
        "btnet34", "btnet50", "btnet100", "btnet200"}


PLUGINS = load_plugins()


def _backbone_names() -> list[str]:
    return PLUGINS.registry("backbone").names()


def _params() -> list:  # type: ignore[type-arg]
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in _backbone_names()]


def test_registry_has_the_builtin_backbones() -> None:
    names = _backbone_names()
    for n in ("iresnet18", "iresnet34", "iresnet50", "iresnet100", "iresnet200"):
        assert n in names


@pytest.mark.parametrize("name", _params())
def test_backbone_contract_forward_backward(name: str) -> None:
    """facebone.testing's backbone check at 112 px (its ONNX part is tests/test_export.py's job)."""
    check_backbone(name, PLUGINS, image_size=112, embedding_size=128, onnx=False)


def test_hook_modules_do_not_import_torch() -> None:
    """Discovery stays fast: registering the built-in backbones must not import torch."""
    import subprocess
    import sys

    mods = ["iresnet", "mobilefacenet", "shufflefacenet", "mixfacenet", "comparison", "btnet"]
    code = ("import sys\n" + "".join(f"import facebone.plugins.backbones.{m}\n" for m in mods)
            + "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
