"""Checkpoints in safetensors, written atomically, with facebone metadata."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facebone.errors import DataError
from facebone.io import atomic_write


def save_checkpoint(path: str | os.PathLike, modules: dict[str, nn.Module], metadata: dict[str, Any]) -> Path:
    """Save the state dicts of ``modules`` (keys prefixed ``name.``) to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{prefix}.{key}"] = value.detach().to("cpu").contiguous()
    return save_tensors(path, tensors, metadata)


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``metadata`` (values JSON-encoded unless strings) as a facebone
    safetensors file, atomically. The same content always gives the same bytes (the header's keys
    are sorted), so two checkpoints can be compared file to file."""
    from safetensors.torch import save_file

    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta["format"] = "facebone"

    def write(tmp: str) -> None:
        save_file(tensors, tmp, metadata=meta)
        _canonical_header(tmp)

    return atomic_write(path, write)


def _canonical_header(path: str) -> None:
    """Rewrite a safetensors header in place with sorted keys (same length, same data offsets)."""
    with open(path, "r+b") as fh:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) > size:  # cannot happen for a header safetensors wrote; leave it as it is
            return
        fh.seek(8)
        fh.write(text + b" " * (size - len(text)))


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors checkpoint; DataError if it is missing or corrupt."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise DataError(f"{path}: not a readable safetensors checkpoint ({exc})") from None
    return tensors, metadata


def load_module_state(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, source: str) -> None:
    """Load the ``prefix.*`` tensors into ``module`` strictly; DataError listing any mismatch."""
    from facebone.weights.keys import compare

    state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    report = compare(state, module.state_dict())
    missing = sorted(report.missing + report.filled)  # facebone's own checkpoints hold every buffer
    unexpected = sorted(report.unexpected)
    wrong = sorted(report.mismatched)
    if report.non_finite or report.wrong_dtype:
        if report.wrong_dtype:
            k, theirs, ours = report.wrong_dtype[0]
            why = f"tensor {prefix}.{k} is {theirs}, the model needs {ours}"
        else:
            why = f"tensor {prefix}.{report.non_finite[0]} holds NaN or Inf"
        count = len(report.wrong_dtype) + len(report.non_finite)
        raise DataError(f"{source}: refusing to load: {why} ({count} such tensor(s)); the checkpoint is corrupt "
                        "or from a diverged run")
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {prefix}.{missing[0]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {prefix}.{unexpected[0]})")
        if wrong:
            k, theirs, ours = wrong[0]
            parts.append(f"{len(wrong)} shape mismatches (e.g. {prefix}.{k}: checkpoint {theirs}, model {ours})")
        raise DataError(f"{source}: checkpoint does not match the experiment's {prefix}: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)
