"""Registry-driven: every registered head (built-in or from any installed plugin), with its
default options, trains a tiny model for a few steps and the loss falls; gives rows with label
-1 no margin; and resumes exactly from a safetensors save of its state. A third-party head made
here in memory goes through the training check."""
from __future__ import annotations

import dataclasses
from importlib import metadata as md

import pytest
import torch
import torch.nn.functional as F

import facebone
from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options

from safetensors.torch import load_file, save_file

from fb_testing import install_module, make_entry_point

NUM_CLASSES, EMBEDDING, STEPS = 8, 32, 40


def head_names(plugins) -> list[str]:
    return [c.qualified_name for c in plugins.registry("head")]


def build(plugins, name: str, seed: int = 0) -> torch.nn.Module:
    comp = plugins.get("head", name)
    options, problems = build_options(comp.options, {}, name)
    assert problems == [], problems
    head = comp.factory(options, num_classes=NUM_CLASSES, embedding_size=EMBEDDING, seed=seed)
    assert isinstance(head, torch.nn.Module), f"head '{name}' built {type(head).__name__}, not an nn.Module"
    return head


def losses_while_training(head: torch.nn.Module, steps: int = STEPS) -> list[float]:
    """A linear embedder and a class-centre matrix trained with Adam through ``head``; the
    objective is cross-entropy plus the head's extra loss terms, as the core's."""
    torch.manual_seed(0)
    x = torch.randn(64, 16)
    labels = torch.arange(64) % NUM_CLASSES
    model = torch.nn.Linear(16, EMBEDDING)
    centres = torch.nn.Parameter(torch.randn(NUM_CLASSES, EMBEDDING) * 0.01)
    params = [*model.parameters(), centres, *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.01)
    losses = []
    for _ in range(steps):
        embeddings = model(x)
        norms = embeddings.norm(dim=1, keepdim=True)
        cosine = F.linear(F.normalize(embeddings, dim=1), F.normalize(centres, dim=1))
        logits = head(cosine, labels, norms)
        assert logits.shape == cosine.shape and torch.isfinite(logits).all()
        loss = F.cross_entropy(logits.float(), labels)
        extra = getattr(head, "loss_terms", None)
        if extra is not None:
            loss = loss + sum(extra(norms).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


PLUGINS = load_plugins()


@pytest.mark.parametrize("name", head_names(PLUGINS))
def test_every_registered_head_trains_and_the_loss_falls(name):
    losses = losses_while_training(build(PLUGINS, name))
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.7 * first, (name, losses[:3], losses[-3:])


def batch(step: int, n: int = 16, c: int = NUM_CLASSES):
    g = torch.Generator().manual_seed(100 + step)
    cos = torch.rand(n, c, generator=g) * 1.8 - 0.9
    labels = torch.randint(0, c, (n,), generator=g)
    labels[[step % n, (step + 5) % n]] = -1
    norms = torch.rand(n, 1, generator=g) * 30 + 5
    return cos, labels, norms


@pytest.mark.parametrize("name", head_names(PLUGINS))
def test_rows_with_label_minus_one_get_no_margin(name):
    """The contract: a -1 row's logits are its cosines times one positive factor (the scale)."""
    head = build(PLUGINS, name)
    for step in range(3):
        cos, labels, norms = batch(step)
        with torch.no_grad():
            logits = head(cos, labels, norms)
        rows = labels < 0
        factor = logits[rows] / cos[rows]
        assert (factor > 0).all(), name
        torch.testing.assert_close(factor, factor[:, :1].expand_as(factor), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", head_names(PLUGINS))
def test_state_survives_a_safetensors_save_and_load(name, tmp_path):
    """Three steps, save, load into a head built with another seed, three more steps: the
    logits and the state equal those of the uninterrupted head, bit for bit."""
    head = build(PLUGINS, name, seed=1)
    for step in range(3):
        head(*batch(step))
    path = tmp_path / "head.safetensors"
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(path))
    resumed = build(PLUGINS, name, seed=999)
    resumed.load_state_dict(load_file(str(path)), strict=True)
    for step in range(3, 6):
        assert torch.equal(head(*batch(step)), resumed(*batch(step))), (name, step)
    for key, value in head.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key


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
    losses = losses_while_training(build(plugins, "tp_softmax"))
    assert sum(losses[-3:]) < 0.7 * sum(losses[:3])
