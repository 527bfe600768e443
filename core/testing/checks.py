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


def _build(kind: str, name: str, plugins: Any = None, given: dict[str, Any] | None = None, **runtime: Any) -> Any:
    """The component built with its default options (plus ``given``) through the core's build path
    (skip if a needed optional package is absent)."""
    import pytest

    from facebone.plugin.build import build_component
    from facebone.plugin.options import build_options

    comp = _plugins(plugins).get(kind, name)
    options, problems = build_options(comp.options, dict(given or {}), f"{kind} '{name}'")
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
    loss = out.square().mean()
    for h, w in list(getattr(model, "input_sizes", None) or ())[1:]:  # a routing backbone: every path it serves
        other = model(torch.rand(2, 3, h, w) * 2 - 1)
        assert other.shape == (2, embedding_size) and torch.isfinite(other).all(), \
            f"backbone '{name}': path for {h}x{w} gives {tuple(other.shape)} or non-finite values"
        loss = loss + other.square().mean()
    loss.backward()
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


HEAD_CLASSES, HEAD_DIM = 8, 32


def _head_training_losses(head: Any, steps: int = 40) -> list[float]:
    """A linear embedder and class centres trained with Adam through ``head`` (cross-entropy plus the
    head's extra loss terms, as the core's classification objective)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.randn(64, 16)
    labels = torch.arange(64) % HEAD_CLASSES
    model = torch.nn.Linear(16, HEAD_DIM)
    centres = torch.nn.Parameter(torch.randn(HEAD_CLASSES, HEAD_DIM) * 0.01)
    optimizer = torch.optim.Adam([*model.parameters(), centres, *head.parameters()], lr=0.01)
    losses = []
    for _ in range(steps):
        embeddings = model(x)
        norms = embeddings.norm(dim=1, keepdim=True)
        cosine = F.linear(F.normalize(embeddings, dim=1), F.normalize(centres, dim=1))
        logits = head(cosine, labels, norms)
        assert logits.shape == cosine.shape and torch.isfinite(logits).all(), "non-finite or misshaped logits"
        loss = F.cross_entropy(logits.float(), labels)
        extra = getattr(head, "loss_terms", None)
        if extra is not None:
            loss = loss + sum(extra(norms).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _head_batch(step: int, n: int = 16) -> tuple[Any, Any, Any]:
    """Random cosines, labels with two -1 rows, and norms, reproducible per step."""
    import torch

    g = torch.Generator().manual_seed(100 + step)
    cos = torch.rand(n, HEAD_CLASSES, generator=g) * 1.8 - 0.9
    labels = torch.randint(0, HEAD_CLASSES, (n,), generator=g)
    labels[[step % n, (step + 5) % n]] = -1
    norms = torch.rand(n, 1, generator=g) * 30 + 5
    return cos, labels, norms


def check_head(name: str, plugins: Any = None) -> None:
    """A tiny model trained through the head lowers its loss (last < 0.7 x first); rows labelled -1
    get no margin (their logits are the cosines times one positive factor); the state survives a
    safetensors save and a load into a head built with another seed, bit for bit."""
    import torch
    from safetensors.torch import load_file, save_file

    def build(seed: int) -> Any:
        return _build("head", name, plugins, num_classes=HEAD_CLASSES, embedding_size=HEAD_DIM, seed=seed)

    losses = _head_training_losses(build(0))
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.7 * first, f"head '{name}': loss did not fall ({first:.3f} -> {last:.3f})"
    head = build(0)
    for step in range(3):
        cos, labels, norms = _head_batch(step)
        with torch.no_grad():
            logits = head(cos, labels, norms)
        rows = labels < 0
        factor = logits[rows] / cos[rows]
        assert (factor > 0).all(), f"head '{name}': rows labelled -1 got non-positive logit factors"
        torch.testing.assert_close(factor, factor[:, :1].expand_as(factor), rtol=1e-5, atol=1e-5,
                                   msg=f"head '{name}': rows labelled -1 got a margin")
    head = build(1)
    for step in range(3):
        head(*_head_batch(step))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "head.safetensors")
        save_file({k: v.contiguous() for k, v in head.state_dict().items()}, path)
        resumed = build(999)
        resumed.load_state_dict(load_file(path), strict=True)
    for step in range(3, 6):
        assert torch.equal(head(*_head_batch(step)), resumed(*_head_batch(step))), \
            f"head '{name}': resumed head differs at step {step}"
    for key, value in head.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), f"head '{name}': state '{key}' not restored"


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


def _skip_if_refused(comp: Any, given: dict[str, Any], experiment: dict[str, Any]) -> None:
    """Skip when the component's own validation ``check`` refuses the generic set-up of a check (e.g.
    an objective that trains the branches of one backbone family): its own tests cover it."""
    import pytest

    from facebone.plugin.options import build_options

    if comp.check is None:
        return
    options, problems = build_options(comp.options, dict(given), f"{comp.kind} '{comp.name}'")
    refused = [] if problems else (comp.check(options, experiment) or [])
    if refused:
        pytest.skip(f"{comp.kind} '{comp.name}' refuses the generic check's model ({refused[0]}); "
                    "its contract is checked by its own tests")


def check_objective(name: str, plugins: Any = None) -> None:
    """Built as an nn.Module; on a small batch through a small model, the core's classifier and a
    scaled-cosine head (and a frozen teacher when its options have a ``teacher``), forward returns
    named finite scalar terms whose sum trains the model and not the teacher."""
    import copy

    import torch

    from facebone.contracts import Batch
    from facebone.plugin.options import describe_options
    from facebone.train.classifier import Classifier
    from facebone.train.teacher import FrozenTeacher

    comp = _plugins(plugins).get("objective", name)
    wants_teacher = "teacher" in {i.name for i in describe_options(comp.options)}
    given = {"teacher": "runs/teacher"} if wants_teacher else {}  # the core loads it; here it is passed
    _skip_if_refused(comp, given, {"backbone": {"type": "check-model"}, "data": {"image_size": 8}})
    objective = _build("objective", name, plugins, given, num_classes=4, embedding_size=8, seed=0)
    assert isinstance(objective, torch.nn.Module), f"objective '{name}' is not a torch.nn.Module"

    class ScaledCosine(torch.nn.Module):
        def forward(self, cosine: Any, labels: Any, norms: Any) -> Any:
            return cosine * 16.0

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 8))
    batch = Batch(torch.rand(4, 3, 8, 8) * 2 - 1, torch.arange(4))
    teacher = FrozenTeacher(copy.deepcopy(model), 8, "check") if wants_teacher else None
    terms = objective(batch, model=model, classifier=Classifier(4, 8, seed=0), head=ScaledCosine(), teacher=teacher)
    assert isinstance(terms, dict) and terms, f"objective '{name}' returned {type(terms).__name__}, not named terms"
    for key, value in terms.items():
        assert isinstance(key, str) and key, f"objective '{name}': term name {key!r} is not a non-empty string"
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and bool(torch.isfinite(value)), \
            f"objective '{name}': term {key!r} is not a finite scalar tensor"
    sum(terms.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()), \
        f"objective '{name}': its terms do not reach the model's parameters"
    assert teacher is None or all(p.grad is None for p in teacher.parameters()), \
        f"objective '{name}': gradient reached the frozen teacher"


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
