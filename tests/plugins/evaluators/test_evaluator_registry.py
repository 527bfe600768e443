"""Every built-in evaluator is discoverable through its entry point, with documented options."""
from __future__ import annotations

import pytest

from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import describe_options

EVALUATORS = ["verification", "ijb", "ijb_identification"]


@pytest.fixture(scope="module")
def registry():
    return load_plugins().registry("evaluator")


@pytest.mark.parametrize("name", EVALUATORS)
def test_registered_with_documented_options(registry, name):
    comp = registry.get(name)
    assert comp.summary and callable(comp.factory)
    infos = describe_options(comp.options)
    assert infos and all(i.help for i in infos)


def test_hook_modules_import_without_numpy_or_torch():
    import subprocess
    import sys

    code = ("import sys, facebone.plugins.evaluators.verification, facebone.plugins.evaluators.ijb; "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
