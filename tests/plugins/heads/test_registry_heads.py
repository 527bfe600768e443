"""Registry-driven: every registered head (built-in or from any installed plugin) passes facebone.testing's
head check; a third-party head made here in memory is iterated and checked too."""
from __future__ import annotations

import dataclasses
from importlib import metadata as md

import pytest
import facebone
from facebone.plugin.discovery import load_plugins
from facebone.testing import check_head

from fb_testing import install_module, make_entry_point

PLUGINS = load_plugins()


def head_names(plugins) -> list[str]:
    return [c.qualified_name for c in plugins.registry("head")]


@pytest.mark.parametrize("name", head_names(PLUGINS))
def test_every_registered_head_meets_the_contract(name):
    """Training lowers the loss, -1 rows get no margin, state resumes bit for bit (facebone.testing)."""
    check_head(name, PLUGINS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaledSoftmaxOptions:
    scale: float = facebone.option(16.0, "logit scale")


def build_scaled_softmax(options, **runtime):  # a third-party head: plain normalised softmax
    import torch

    class ScaledSoftmax(torch.nn.Module):
        def forward(self, cosine, labels, norms=None):
            return cosine * options.scale

    return ScaledSoftmax()


@facebone.hookimpl
def _third_party_heads(registry):
    registry.add("tp_softmax", build_scaled_softmax, options=ScaledSoftmaxOptions, summary="third-party head")


def test_a_third_party_head_is_iterated_and_trained(monkeypatch):
    install_module(monkeypatch, "tp_heads", facebone_heads=_third_party_heads)
    installed = list(md.entry_points(group="facebone"))
    plugins = load_plugins([*installed, make_entry_point("tp_heads", "tp_heads", dist="tp-heads")])
    names = head_names(plugins)
    assert "tp-heads:tp_softmax" in names and "facebone:arcface" in names
    check_head("tp_softmax", plugins)
