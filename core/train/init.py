"""Start a stage from an earlier one: ``[train] init_from`` (model weights) and
``classifier_from`` (class centres).

A source is a run directory (its latest checkpoint) or a checkpoint file: facebone's run
checkpoint (``model.*`` keys), a bare backbone in safetensors, or an InsightFace ``.pth``/``.pt``
state dict (backbone keys). Model keys are named as the model's own state dict (``warp.*``,
``backbone.*``); a backbone-only source is compared with ``backbone.*`` alone.

Every load compares names and shapes first (:class:`facebone.weights.keys.KeyReport`). With
``init_strict`` any missing, unexpected or mis-shaped key is a one-line error naming the source,
the backbones and the first keys of each kind; without it the matching tensors are loaded and
the report is logged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from facebone.errors import ConfigError, DataError
from facebone.weights.keys import KeyReport, compare

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                      "U8": torch.uint8, "BOOL": torch.bool}


def resolve_checkpoint(path: str | Path, where: str) -> Path:
    """The checkpoint file that ``where = path`` names (a run directory's latest one);
    ``where`` is the key for messages, e.g. ``"[train] init_from"``."""
    from facebone.rundir import RunDir

    p = Path(path).expanduser()
    if p.is_dir():
        run = RunDir(p)
        found = run.latest_checkpoint()
        if found is None:
            what = "run directory" if run.is_run() or run.resolved.is_file() else "directory (not a facebone run)"
            raise DataError(f"{where}: {p} is a {what} without any checkpoint")
        return found
    if p.is_file():
        return p
    raise ConfigError(f"{where}: {path} does not exist (a run directory or a checkpoint file)")


def _is_torch_file(path: Path) -> bool:
    return path.suffix in TORCH_SUFFIXES


def read_model_state(path: Path, *, shapes_only: bool = False) -> tuple[dict[str, Any], dict[str, str], bool]:
    """``(state, metadata, whole_model)``: tensors (meta tensors with ``shapes_only``) keyed as the
    model's state dict; ``whole_model`` is False for a backbone-only source."""
    from facebone.weights.keys import read_torch_state_dict

    if _is_torch_file(path):
        state = read_torch_state_dict(path)
        return {f"backbone.{k}": v for k, v in state.items()}, {}, False
    tensors, meta = (read_shapes(path) if shapes_only else _read_tensors(path))
    if any(k.startswith("model.") for k in tensors):
        return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, meta, True
    if any(k.startswith("classifier.") or k.startswith("head.") for k in tensors):
        raise DataError(f"{path}: a checkpoint without model weights (no model.* keys)")
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    if tensors and all(k.startswith("backbone.") for k in tensors):
        tensors = {k[len("backbone."):]: v for k, v in tensors.items()}
    return {f"backbone.{k}": v for k, v in tensors.items()}, meta, False


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from facebone.weights.checkpoint import read_checkpoint

    return read_checkpoint(path)


def read_shapes(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Meta tensors with the shapes of a safetensors file's entries (reads the header only)."""
    from safetensors import safe_open

    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            slices = {k: fh.get_slice(k) for k in fh.keys()}
            tensors = {k: torch.empty(tuple(s.get_shape()), dtype=SAFETENSORS_DTYPES.get(s.get_dtype(), torch.float32),
                                      device="meta") for k, s in slices.items()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise DataError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    return tensors, dict(meta)


def _describe(report: KeyReport, limit: int = 3) -> str:
    parts = []
    if report.missing:
        parts.append(f"{len(report.missing)} missing (e.g. {', '.join(sorted(report.missing)[:limit])})")
    if report.unexpected:
        parts.append(f"{len(report.unexpected)} unexpected (e.g. {', '.join(sorted(report.unexpected)[:limit])})")
    if report.mismatched:
        shown = ", ".join(f"{k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in report.mismatched[:limit])
        parts.append(f"{len(report.mismatched)} with another shape (e.g. {shown})")
    if report.wrong_dtype:
        shown = ", ".join(f"{k} is {a}, the model needs {b}" for k, a, b in report.wrong_dtype[:limit])
        parts.append(f"{len(report.wrong_dtype)} of the wrong kind (e.g. {shown})")
    if report.non_finite:
        parts.append(f"{len(report.non_finite)} holding NaN or Inf (e.g. {', '.join(report.non_finite[:limit])})")
    return "; ".join(parts)


def complete_backbone_state(state: dict[str, Any], complete: Callable[[dict], dict] | None) -> dict[str, Any]:
    """``state`` with its ``backbone.*`` tensors passed through the backbone's optional
    ``complete_state_dict`` (facebone.contracts): e.g. a trunk checkpoint fills every branch of a btnet."""
    if complete is None:
        return state
    own = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    full = complete(own)
    if full is own:
        return state
    return {**{k: v for k, v in state.items() if not k.startswith("backbone.")},
            **{f"backbone.{k}": v for k, v in full.items()}}


def compare_init(model_state: dict[str, Any], path: Path, *, backbone: str, strict: bool,
                 shapes_only: bool = False, where: str = "[train] init_from",
                 complete: Callable[[dict], dict] | None = None) -> tuple[KeyReport, dict[str, Any]]:
    """The key report of loading ``path`` into a model whose state dict is ``model_state``.

    ``complete`` is the backbone's ``complete_state_dict`` when it has one: it is applied to the
    source's backbone tensors first (a btnet takes its branches from a trunk checkpoint).
    Raises a one-line DataError when ``strict`` and anything differs, or when nothing matches.
    """
    state, meta, whole = read_model_state(path, shapes_only=shapes_only)
    state = complete_backbone_state(state, complete)
    target = model_state if whole else {k: v for k, v in model_state.items() if k.startswith("backbone.")}
    report = compare(state, target)
    source = f"{where} {path}"
    if meta.get("backbone"):
        source += f" (backbone {meta['backbone']})"
    matching = (len(target) - len(report.missing) - len(report.filled) - len(report.mismatched)
                - len(report.wrong_dtype) - len(report.non_finite))
    if strict and not report.ok:
        hint = "; set [train] init_strict = false to load the keys that match" if where.endswith("init_from") else ""
        raise DataError(f"{source} does not fit backbone {backbone}: {_describe(report)}{hint}")
    if matching <= 0:
        raise DataError(f"{source}: no tensor fits backbone {backbone}: {_describe(report)}")
    return report, state


def init_model(model: nn.Module, path: Path, *, backbone: str, strict: bool,
               log: Callable[[str], None] = print, where: str = "[train] init_from") -> KeyReport:
    """Load ``path`` into ``model`` (all of it, or with ``strict=False`` what matches); log the report."""
    own = model.state_dict()
    report, state = compare_init(own, path, backbone=backbone, strict=strict, where=where,
                                 complete=getattr(getattr(model, "backbone", None), "complete_state_dict", None))
    refused = {k for k, _, _ in report.mismatched} | {k for k, _, _ in report.wrong_dtype} | set(report.non_finite)
    usable = {k: v for k, v in state.items() if k in own and k not in refused}
    model.load_state_dict(usable, strict=False)
    log(f"init_from {path}: loaded {len(usable)} of {len(own)} tensors"
        + ("" if report.ok else f"; {_describe(report, limit=5)}"))
    return report


def read_classifier_state(path: Path) -> dict[str, torch.Tensor]:
    """``{"weight": (C*K, D)}`` (and ``sample_step`` when saved) from a facebone checkpoint."""
    from facebone.weights.checkpoint import read_checkpoint

    if _is_torch_file(path):
        raise DataError(f"[train] classifier_from {path}: expected a facebone run or .safetensors checkpoint")
    tensors, _ = read_checkpoint(path)
    state = {k[len("classifier."):]: v for k, v in tensors.items() if k.startswith("classifier.")}
    if "weight" not in state:
        raise DataError(f"[train] classifier_from {path}: the checkpoint holds no classifier (no classifier.weight)")
    return state


def init_classifier(classifier: Any, path: Path, *, log: Callable[[str], None] = print) -> None:
    """Load the whole class-centre matrix of ``path`` into ``classifier`` (this rank's rows)."""
    state = read_classifier_state(path)
    weight = state["weight"]
    want = (classifier.full_rows, classifier.embedding_size)
    if tuple(weight.shape) != want:
        k = classifier.subcenters
        raise DataError(f"[train] classifier_from {path}: holds {weight.shape[0]} x {weight.shape[1]} centres, this "
                        f"experiment needs {classifier.num_classes} classes x {k} centres x "
                        f"{classifier.embedding_size}-D = {want[0]} x {want[1]}")
    classifier.load_full_state({"weight": weight})
    log(f"classifier_from {path}: {classifier.num_classes} class centres")
