"""Backbone weights: InsightFace ``.pth`` import, key/shape reports, facebone safetensors files.

InsightFace checkpoints (``backbone.pth``, ``model.pt``) are plain state dicts; they are read
with ``torch.load(weights_only=True)``, which never unpickles code.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from facebone.errors import DataError

WRAPPER_KEYS = ("state_dict", "state_dict_backbone", "model", "backbone")  # state_dict_backbone: arcface_torch resume files
STRIP_PREFIXES = ("module.", "backbone.", "_orig_mod.")


@dataclasses.dataclass
class KeyReport:
    """How a checkpoint's keys and shapes compare with a model's state dict."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]  # (key, checkpoint shape, model shape)
    filled: list[str]  # missing BN ``num_batches_tracked`` counters, taken from the model
    wrong_dtype: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (key, checkpoint, model)
    non_finite: list[str] = dataclasses.field(default_factory=list)  # float tensors holding NaN or Inf

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.wrong_dtype or self.non_finite)

    def lines(self, limit: int = 10) -> list[str]:
        """Human-readable report, at most ``limit`` entries per kind of problem."""
        out = []
        for title, items in (("missing from checkpoint", self.missing), ("not in model", self.unexpected)):
            if items:
                out.append(f"{len(items)} key(s) {title}: " + ", ".join(items[:limit])
                           + (" ..." if len(items) > limit else ""))
        if self.mismatched:
            out.append(f"{len(self.mismatched)} shape mismatch(es):")
            out.extend(f"  {k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.mismatched[:limit])
        if self.wrong_dtype:
            out.append(f"{len(self.wrong_dtype)} tensor(s) of the wrong kind: " + ", ".join(
                f"{k} is {a}, the model needs {b}" for k, a, b in self.wrong_dtype[:limit]))
        if self.non_finite:
            out.append(f"{len(self.non_finite)} tensor(s) holding NaN or Inf: " + ", ".join(self.non_finite[:limit])
                       + (" ..." if len(self.non_finite) > limit else ""))
        return out

    def summary(self) -> str:
        text = (f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                f"{len(self.mismatched)} shape mismatches")
        if self.wrong_dtype:
            text += f", {len(self.wrong_dtype)} of the wrong dtype (e.g. {self.wrong_dtype[0][0]})"
        if self.non_finite:
            text += f", {len(self.non_finite)} with NaN or Inf (e.g. {self.non_finite[0]})"
        return text


def compare(checkpoint: dict[str, Any], model_state: dict[str, Any]) -> KeyReport:
    """Compare key names and shapes of two state dicts."""
    filled = [k for k in model_state if k not in checkpoint and k.endswith("num_batches_tracked")]
    missing = [k for k in model_state if k not in checkpoint and k not in filled]
    unexpected = [k for k in checkpoint if k not in model_state]
    mismatched = [(k, tuple(v.shape), tuple(model_state[k].shape)) for k, v in checkpoint.items()
                  if k in model_state and tuple(v.shape) != tuple(model_state[k].shape)]
    wrong_dtype, non_finite = check_values(checkpoint, model_state)
    return KeyReport(missing, unexpected, mismatched, filled, wrong_dtype, non_finite)


def check_values(checkpoint: dict[str, Any], model_state: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Tensors a model must not load: an integer (or bool) tensor where the model holds floats (or
    the reverse), and floating tensors holding NaN or Inf. ``(wrong_dtype, non_finite)``, by key."""
    import torch

    wrong, bad = [], []
    for k, v in checkpoint.items():
        if not isinstance(v, torch.Tensor):
            continue
        target = model_state.get(k)
        if isinstance(target, torch.Tensor) and v.is_floating_point() != target.is_floating_point():
            wrong.append((k, str(v.dtype).replace("torch.", ""), str(target.dtype).replace("torch.", "")))
        elif v.is_floating_point() and v.numel() and v.device.type != "meta" and not bool(torch.isfinite(v).all()):
            bad.append(k)
    return wrong, bad


def read_torch_state_dict(path: str | Path) -> dict[str, Any]:
    """A tensor state dict from a ``.pth``/``.pt`` file (``weights_only=True``), wrappers removed."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a weights-only PyTorch state dict ({first})") from None
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    for prefix in STRIP_PREFIXES:
        if all(k.startswith(prefix) for k in obj):
            obj = {k[len(prefix):]: v for k, v in obj.items()}
    return obj


def embedding_size_of(state: dict[str, Any], model_state: dict[str, Any]) -> int | None:
    """D stored in ``state``: the size of the model's last BatchNorm (the embedding BN1d).

    ``model_state`` is the state dict of the same backbone built with any D; its (module)
    order finds the last BatchNorm, whatever the order of ``state`` (safetensors sorts keys).
    """
    last = [k for k in model_state if k.endswith("running_var") and k in state]
    return int(state[last[-1]].shape[0]) if last else None


def load_into(model: Any, state: dict[str, Any], where: str) -> KeyReport:
    """Load ``state`` into ``model`` strictly; DataError naming ``where`` and the first problems."""
    report = compare(state, model.state_dict())
    if not report.ok:
        raise DataError(f"{where}: does not fit backbone ({report.summary()}): " + "; ".join(
            line.strip() for line in report.lines(limit=3)))
    model.load_state_dict({**{k: model.state_dict()[k] for k in report.filled}, **state}, strict=True)
    return report


def save_backbone(path: str | Path, state: dict[str, Any], *, backbone: str, options: dict[str, Any],
                  embedding_size: int, image_size: int, source: str = "") -> Path:
    """Write a backbone state dict as safetensors (atomically), with what is needed to rebuild it."""
    from safetensors.torch import save_file

    from facebone.io import atomic_write

    meta = {"format": "facebone-backbone", "backbone": backbone, "options": json.dumps(options),
            "embedding_size": str(embedding_size), "image_size": str(image_size), "source": source}
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_safetensors(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors, metadata) of a safetensors file holding a backbone: a bare state dict, or a run
    checkpoint whose backbone tensors are ``model.backbone.*``; ``module.`` prefixes removed."""
    from facebone.weights.checkpoint import read_checkpoint

    tensors, meta = read_checkpoint(path)
    for prefix in ("model.backbone.", "backbone."):  # a run checkpoint (warp, classifier, ...): the backbone
        if any(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            break
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors, dict(meta)
