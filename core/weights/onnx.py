"""ONNX export of a backbone (optionally preceded by its warp) with an onnxruntime check.

``export_onnx(model, "out.onnx", 112)`` writes a graph with input ``images`` ``(N, 3, H, W)``
float32 in [-1, 1] (dynamic N) and output ``embedding`` ``(N, D)``, then runs onnxruntime
on a random batch and reports the largest absolute difference from PyTorch. Needs the
optional extra ``facebone[export]`` (onnx, onnxruntime).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from facebone.errors import ConfigError, FaceboneError
from facebone.io import atomic_write

OPSET = 17


def _need_onnx() -> Any:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise FaceboneError(f"ONNX export needs onnx and onnxruntime ({exc.name} is missing): "
                            "pip install 'facebone[export]'") from None
    return onnx, onnxruntime


def opset_range() -> tuple[int, int]:
    """The ONNX opsets the installed torch exporter (TorchScript-based) can write."""
    try:
        from torch.onnx import _constants as c

        return int(c.ONNX_MIN_OPSET), int(getattr(c, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", c.ONNX_MAX_OPSET))
    except (ImportError, AttributeError):  # pragma: no cover - other torch versions
        return 7, OPSET


def check_opset(opset: int) -> None:
    """ConfigError unless ``opset`` is one the exporter supports."""
    low, high = opset_range()
    if not low <= opset <= high:
        raise ConfigError(f"--opset {opset}: this torch exports ONNX opsets {low} to {high} (default {OPSET})")


def export_onnx(model: Any, path: str | Path, image_size: int | tuple[int, int], *, opset: int = OPSET,
                check_batch: int = 2, seed: int = 0) -> dict[str, Any]:
    """Export ``model`` (eval mode, float32, CPU) to ``path``; return the check's figures.

    Returns ``{"path", "opset", "max_abs_diff", "max_rel_diff", "min_cosine"}``, comparing
    onnxruntime with PyTorch on ``check_batch`` random images. The model is left in eval mode.
    """
    import numpy as np
    import torch

    onnx, ort = _need_onnx()
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    path = Path(path)
    model = model.eval().float().to("cpu")
    gen = torch.Generator().manual_seed(seed)
    dummy = torch.rand(check_batch, 3, h, w, generator=gen) * 2 - 1

    check_opset(opset)
    with torch.no_grad():
        ref = model(dummy).numpy()
    if not np.isfinite(ref).all():
        raise FaceboneError(f"{path}: not written: the model's outputs are not finite (NaN or Inf) on the check "
                            "batch; are the weights finite?")

    def write(tmp: str) -> None:
        import warnings

        from facebone.contracts import routes_inputs

        try:
            with warnings.catch_warnings():
                if routes_inputs(model):  # the path is chosen from the input's size: the graph is for this size
                    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
                torch.onnx.export(model, (dummy,), tmp, dynamo=False, opset_version=opset, input_names=["images"],
                                  output_names=["embedding"],
                                  dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}})
            onnx.checker.check_model(tmp)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - an operator the exporter cannot write: the model's limit
            from facebone.plugin.build import debug_enabled

            if debug_enabled():
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise FaceboneError(f"{path}: ONNX export at opset {opset} failed: {type(exc).__name__}: {first} "
                                "(FACEBONE_DEBUG=1 shows the traceback)") from exc

    atomic_write(path, write)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["embedding"], {"images": dummy.numpy()})[0]
    if not np.isfinite(got).all():
        raise FaceboneError(f"{path}: onnxruntime's outputs are not finite (NaN or Inf) where PyTorch's are; "
                            "the exported graph is wrong")
    diff = np.abs(got - ref)
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1) + 1e-12)
    return {"path": str(path), "opset": opset, "max_abs_diff": float(diff.max()),
            "max_rel_diff": float(diff.max() / (np.abs(ref).max() + 1e-12)), "min_cosine": float(cos.min())}
