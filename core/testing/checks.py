"""One contract check per component kind (see :mod:`facebone.contracts`)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from facebone.errors import FaceboneError, MissingDependencyError


def _plugins(plugins: Any = None) -> Any:
    from facebone.plugin.discovery import get_plugins

    return plugins or get_plugins()


def _build(kind: str, name: str, plugins: Any = None, **runtime: Any) -> Any:
    """The component built with its default options through the core's build path (skip if a
    needed optional package is absent)."""
    import pytest

    from facebone.plugin.build import build_component
    from facebone.plugin.options import build_options

    comp = _plugins(plugins).get(kind, name)
    options, problems = build_options(comp.options, {}, f"{kind} '{name}'")
    if problems and any("missing required key" in p for p in problems):
        pytest.skip(f"{kind} '{name}' has required options; its build is checked by its own tests")
    assert not problems, f"{kind} '{name}': default options do not validate: {problems}"
    try:
        return build_component(comp, options, **runtime)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


def check_options(kind: str, name: str, plugins: Any = None) -> None:
    """Every option has help text, and the defaults survive a TOML round trip."""
    from facebone.plugin.options import build_options, describe_options, options_to_dict

    comp = _plugins(plugins).get(kind, name)
    infos = describe_options(comp.options)
    undocumented = [i.name for i in infos if not i.help.strip()]
    assert not undocumented, f"{kind} '{name}': options without help: {undocumented}"
    if comp.options is not None and not any(i.required for i in infos):
        default = comp.options()
        table = {k: v for k, v in options_to_dict(default).items() if v is not None}
        rebuilt, problems = build_options(comp.options, table, name)
        assert problems == [] and rebuilt == default, f"{kind} '{name}': defaults do not round-trip: {problems}"


def _track_batch_statistics(model: Any) -> None:
    import torch

    for m in model.modules():  # fresh deep nets overflow in eval mode with initial BN statistics
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None


def check_backbone(name: str, plugins: Any = None, *, image_size: int = 112, embedding_size: int = 64,
                   onnx: bool = True) -> None:
    """(N, 3, H, W) in [-1, 1] -> finite (N, D); every trainable parameter gets a gradient; samples are
    independent in eval mode; the model exports to ONNX and matches (when onnxruntime is installed)."""
    import torch

    torch.manual_seed(0)
    model = _build("backbone", name, plugins, embedding_size=embedding_size, image_size=image_size)
    assert int(model.embedding_size) == embedding_size, f"backbone '{name}': embedding_size {model.embedding_size}"
    assert tuple(model.input_size) == (image_size, image_size), f"backbone '{name}': input_size {model.input_size}"
    x = torch.rand(2, 3, image_size, image_size) * 2 - 1
    _track_batch_statistics(model)
    out = model.train()(x)
    assert out.shape == (2, embedding_size), f"backbone '{name}': output {tuple(out.shape)}"
    assert out.dtype == torch.float32 and torch.isfinite(out).all(), f"backbone '{name}': non-finite output"
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"backbone '{name}': no gradient for {missing[:5]}"
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x[:1])
    scale = a.abs().max().item()
    torch.testing.assert_close(a[:1], b, rtol=1e-3, atol=1e-4 * scale)
    if onnx:
        _check_onnx(name, model, x)


def _check_onnx(name: str, model: Any, x: Any) -> None:
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return
    import numpy as np
    import onnxruntime as ort
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        torch.onnx.export(model, (x,), path, input_names=["images"], output_names=["embeddings"],
                          dynamic_axes={"images": {0: "n"}, "embeddings": {0: "n"}}, opset_version=17, dynamo=False)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = session.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    rel = np.abs(got - want).max() / max(np.abs(want).max(), 1e-12)
    assert rel < 1e-3, f"backbone '{name}': ONNX output differs from PyTorch by {rel:.2e} (relative)"


def check_warp(name: str, plugins: Any = None, *, image_size: int = 32) -> None:
    """A batched, differentiable module with ``output_size`` and an inverse ``restore``."""
    import torch

    warp = _build("warp", name, plugins, image_size=image_size)
    images = torch.rand(3, 3, image_size, image_size, requires_grad=True)
    warped = warp(images)
    assert warped.shape == (3, 3, *warp.output_size), f"warp '{name}': output {tuple(warped.shape)}"
    warped.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0, f"warp '{name}': no gradient to the images"
    restored = warp.restore(warped.detach())
    assert restored.shape == (3, 3, image_size, image_size), f"warp '{name}': restore gives {tuple(restored.shape)}"


def check_head(name: str, plugins: Any = None, *, steps: int = 30) -> None:
    """Finite logits and gradients, rows labelled -1 left without margin, state in buffers that a
    state-dict round trip restores, and a tiny model trained with the head lowers its loss."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    num_classes, dim = 8, 16
    head = _build("head", name, plugins, num_classes=num_classes, embedding_size=dim, seed=0)
    centres = torch.nn.Parameter(torch.randn(num_classes, dim))
    features = torch.randn(64, 32)
    labels = torch.arange(64) % num_classes
    net = torch.nn.Linear(32, dim)
    optimizer = torch.optim.SGD([*net.parameters(), centres, *head.parameters()], lr=0.5, momentum=0.9)

    def loss_of(idx: Any) -> Any:
        emb = net(features[idx])
        cosine = F.normalize(emb) @ F.normalize(centres).t()
        norms = emb.norm(dim=1, keepdim=True)
        logits = head(cosine, labels[idx], norms)
        assert logits.shape == cosine.shape and torch.isfinite(logits).all(), f"head '{name}': bad logits"
        loss = F.cross_entropy(logits, labels[idx])
        extra = getattr(head, "loss_terms", None)
        return loss + sum(extra(norms).values()) if extra is not None else loss

    losses = []
    for step in range(steps):
        idx = torch.randperm(64, generator=torch.Generator().manual_seed(step))[:32]
        loss = loss_of(idx)
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters()), f"head '{name}': non-finite gradient"
        optimizer.step()
        losses.append(float(loss))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first, f"head '{name}': loss did not fall ({first:.3f} -> {last:.3f})"
    # rows whose class lives elsewhere (-1): every logit is the plain scaled cosine of another row's fate
    cosine = torch.rand(4, num_classes) * 2 - 1
    norms = torch.full((4, 1), 20.0)
    minus = torch.full((4,), -1, dtype=torch.long)
    head.eval()
    with torch.no_grad():
        out = head(cosine, minus, norms)
        ratio = out / cosine
    assert torch.isfinite(out).all(), f"head '{name}': non-finite logits for -1 labels"
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), rtol=1e-4, atol=1e-4), \
        f"head '{name}': rows labelled -1 got a margin (logits are not one scale times the cosines)"
    # state survives a state-dict round trip
    clone = _build("head", name, plugins, num_classes=num_classes, embedding_size=dim, seed=1)
    clone.load_state_dict(head.state_dict())
    for key, value in head.state_dict().items():
        assert torch.equal(clone.state_dict()[key], value), f"head '{name}': state '{key}' not restored"


def check_evaluator(name: str, plugins: Any = None) -> None:
    """The factory builds a callable; pointed at an empty data root, the evaluator either runs or
    raises a facebone error (one clear line), never another exception."""
    import numpy as np

    from facebone.contracts import EvalContext

    class ZeroEmbedder:
        embedding_size, image_size, flip = 8, 32, False

        def views(self, images: np.ndarray) -> np.ndarray:
            return np.ones((1, len(images), 8), np.float32)

        def __call__(self, images: np.ndarray) -> np.ndarray:
            return self.views(images)[0]

    with tempfile.TemporaryDirectory() as tmp:
        evaluator = _build("evaluator", name, plugins, data_root=Path(tmp))
        assert callable(evaluator), f"evaluator '{name}' built {type(evaluator).__name__}, not a callable"
        context = EvalContext(out_dir=Path(tmp) / "out", name=name)
        context.out_dir.mkdir()
        try:
            result = evaluator(ZeroEmbedder(), context)
        except FaceboneError as exc:
            assert "\n" not in str(exc).strip(), f"evaluator '{name}': multi-line error {exc}"
            return
        assert isinstance(result, dict) and all(isinstance(k, str) for k in result), \
            f"evaluator '{name}' returned {type(result).__name__}, not a dict of metrics"


def check_objective(name: str, plugins: Any = None) -> None:
    """Built as an nn.Module; forward returns a dict of named scalar terms (checked by the trainer tests)."""
    import torch

    objective = _build("objective", name, plugins, num_classes=4, embedding_size=8, seed=0)
    assert isinstance(objective, torch.nn.Module), f"objective '{name}' is not a torch.nn.Module"


CHECKS: dict[str, Callable[..., None]] = {
    "backbone": check_backbone,
    "warp": check_warp,
    "head": check_head,
    "evaluator": check_evaluator,
    "objective": check_objective,
}


def check_component(kind: str, name: str, plugins: Any = None) -> None:
    """Options and the kind's contract of the registered component ``name``."""
    check_options(kind, name, plugins)
    CHECKS[kind](name, plugins)


def components_under_test(plugins: Any = None, dist: str | None = None) -> list[tuple[str, str]]:
    """``(kind, name)`` of the components to check: those of distribution ``dist`` (or of
    ``$FACEBONE_TEST_DIST``; ``all`` for every one), by default every non-facebone plugin's."""
    from facebone.plugin.registry import KINDS

    plugins = _plugins(plugins)
    dist = dist or os.environ.get("FACEBONE_TEST_DIST")
    out = []
    for kind in KINDS:
        for comp in plugins.registry(kind):
            ours = comp.provider.dist == "facebone"
            if (dist == "all") or (dist is not None and comp.provider.dist == dist) or (dist is None and not ours):
                out.append((kind, comp.name if len(plugins.registry(kind).duplicates().get(comp.name, [])) < 2
                            else comp.qualified_name))
    return out
