"""The network a predictor runs: warp + backbone in PyTorch, or an exported ONNX graph in ONNX Runtime.

Both take uint8 RGB crops ``(N, H, W, 3)`` and return raw embeddings ``(V, N, D)`` float32
(V = 2 with the flip test: the crops, then their mirrors), resizing crops of another size to the
network's input size (PyTorch: as the evaluators' embedder, antialiased bilinear; ONNX Runtime:
PIL's bilinear, which that mode was made to match). The PyTorch network also takes whole images
with RoIs (:meth:`TorchNetwork.embed_rois`): the warp samples the face straight from the image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facebone.errors import ConfigError, DataError, FaceboneError


class TorchNetwork:
    """``warp -> backbone`` of a :class:`~facebone.model.face_model.FaceModel` for inference."""

    backend = "torch"

    def __init__(self, model: Any, *, image_size: int, flip: bool, roi_warp: bool, precision: str = "fp32",
                 channels_last: bool = False, compile: bool = False, device: str = "cpu", batch_size: int = 64):
        import torch

        from facebone.predict.optimize import inference_backbone

        self.device = torch.device(device)
        self.image_size = int(image_size)
        self.flip = bool(flip)
        self.roi_warp = bool(roi_warp)
        self.batch_size = int(batch_size)
        self.warp = model.warp.eval().to(self.device)
        self.embedding_size = int(model.backbone.embedding_size)
        self.takes_rois = bool(getattr(model.backbone, "takes_rois", False))
        """The backbone also gets the RoIs the warp used (rtnet50)."""
        sizes = getattr(model.backbone, "input_sizes", None)
        self.input_sizes: tuple[int, ...] | None = tuple(int(s[0] if isinstance(s, (tuple, list)) else s)
                                                         for s in sizes) if sizes else None
        """Sizes a routing backbone serves natively (None: one size, ``image_size``)."""
        self.net = inference_backbone(model.backbone, precision=precision, channels_last=channels_last,
                                      compile=compile, device=self.device)
        self.precision = precision

    def describe(self) -> str:
        return f"PyTorch on {self.device}: {self.net.describe()}"

    def _views(self, x: Any) -> Any:
        import torch

        return torch.cat([x, torch.flip(x, dims=[3])]) if self.flip else x

    def _warp(self, x: Any, rois: Any = None) -> tuple[Any, Any]:
        """``(warped, RoIs the warp used or None for its fixed box)``."""
        if self.takes_rois and hasattr(self.warp, "forward_with_rois"):
            return self.warp.forward_with_rois(x, rois)
        return self.warp(x, rois), rois

    def _backbone(self, x: Any, rois: Any = None) -> np.ndarray:
        """Warped batch (M, 3, H, W) float -> (M, D) float32, in chunks the compiled graph expects;
        a backbone that takes RoIs (rtnet50) gets ``rois`` (M, 5) or None."""
        import torch

        from facebone.predict.optimize import run_backbone

        step = self.batch_size * (2 if self.flip else 1)
        out = []
        for start in range(0, len(x), step):
            part = x[start:start + step]
            n = len(part)
            extra = {}
            if self.takes_rois:
                extra["rois"] = None if rois is None else rois[start:start + step]
            if self.net.compiled and n < step:  # one static shape: no recompilation
                part = torch.cat([part, part.new_zeros((step - n, *part.shape[1:]))])
                if extra.get("rois") is not None:
                    extra["rois"] = torch.cat([extra["rois"], extra["rois"][:1].expand(step - n, -1)])
            out.append(run_backbone(self.net, part, **extra)[:n].cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embedding_size), np.float32)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw ``(V, N, D)`` of crops ``(N, H, W, 3)`` uint8 (one size), warped with the fixed RoI."""
        import torch

        from facebone.data.decode import to_network_range
        from facebone.eval.embedder import images_to_tensor

        with torch.inference_mode():
            if self.input_sizes:  # a routing backbone takes every size as it is
                x = to_network_range(torch.as_tensor(np.ascontiguousarray(crops)).permute(0, 3, 1, 2))
            else:
                x = images_to_tensor(crops, self.image_size)
            x = x.to(self.device)
            warped, used = self._warp(self._views(x))
        n = len(crops)
        return self._backbone(warped, used).reshape(-1, n, self.embedding_size)

    def embed_rois(self, items: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Raw ``(V, k, D)`` per ``(image (H, W, 3) uint8, rois (k, 5))``: the warp samples each
        RoI from its whole image (the flip view: the mirrored image with mirrored RoIs)."""
        import torch

        from facebone.data.decode import to_network_range
        from facebone.predict.faces import mirror_rois

        warped, used, counts = [], [], []
        with torch.inference_mode():
            for image, rois in items:
                x = to_network_range(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))[None]
                x = x.to(self.device)
                k = len(rois)
                r = torch.as_tensor(np.asarray(rois), dtype=torch.float32, device=self.device)
                views = [self._warp(x.expand(k, -1, -1, -1), r)]
                if self.flip:
                    mirrored = torch.as_tensor(mirror_rois(rois, image.shape[1]), dtype=torch.float32,
                                               device=self.device)
                    views.append(self._warp(torch.flip(x, dims=[3]).expand(k, -1, -1, -1), mirrored))
                warped.append(torch.stack([v[0] for v in views]))  # (V, k, 3, Ho, Wo)
                used.append(torch.stack([v[1] for v in views]))  # (V, k, 5)
                counts.append(k)
            if not warped:
                return []
            flat = torch.cat([w.flatten(0, 1) for w in warped])
            flat_rois = torch.cat([u.flatten(0, 1) for u in used])
        emb = self._backbone(flat, flat_rois)
        out, start = [], 0
        v = 2 if self.flip else 1
        for k in counts:
            out.append(emb[start:start + v * k].reshape(v, k, -1))
            start += v * k
        return out


def _need_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise FaceboneError("--onnx needs onnxruntime, which is not installed: pip install 'facebone[export]'") from None
    return onnxruntime


def onnx_input_size(session: Any) -> tuple[Any, Any]:
    """``(H, W)`` of an ONNX session's image input (str or None where the graph leaves it free)."""
    shape = session.get_inputs()[0].shape
    if len(shape) != 4:
        return None, None
    h, w = shape[2], shape[3]
    return (h if isinstance(h, int) else None), (w if isinstance(w, int) else None)


class OnnxNetwork:
    """An ONNX graph written by `facebone export` (input ``images`` (N, 3, H, W) in [-1, 1],
    output ``embedding`` (N, D)), run by ONNX Runtime; the warp, if any, is inside the graph."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, *, image_size: int, embedding_size: int, flip: bool, source: str,
                 threads: int = 0, optimization: str = "all", batch_size: int = 64):
        ort = _need_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: ONNX model not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        levels = {"none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        options.graph_optimization_level = levels[optimization]
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types for bad files
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{self.path}: not a loadable ONNX model ({first[:200]})") from None
        self.image_size = int(image_size)
        self.embedding_size = int(embedding_size)
        self.flip = bool(flip)
        self.batch_size = int(batch_size)
        self.input_sizes = None
        self.roi_warp = False  # boxes become crops: the graph's warp takes no RoIs
        self.input_name = self.session.get_inputs()[0].name
        h, w = onnx_input_size(self.session)
        if (h is not None and h != self.image_size) or (w is not None and w != self.image_size):
            raise ConfigError(f"{self.path}: the ONNX model takes {h}x{w} images but {source} embeds "
                              f"{self.image_size}x{self.image_size} images; export this run's model: "
                              f"facebone export RUN_DIR --onnx OUT.onnx")
        out = self.session.get_outputs()[0].shape
        if len(out) == 2 and isinstance(out[1], int) and out[1] != self.embedding_size:
            raise ConfigError(f"{self.path}: the ONNX model returns {out[1]}-d embeddings but {source} has "
                              f"{self.embedding_size}-d ones")

    def describe(self) -> str:
        return f"ONNX Runtime {_need_onnxruntime().__version__} on the CPU: {self.path}"

    def _resize(self, crops: np.ndarray) -> np.ndarray:
        if crops.shape[1:3] == (self.image_size, self.image_size):
            return crops
        from PIL import Image

        size = (self.image_size, self.image_size)
        return np.stack([np.asarray(Image.fromarray(c).resize(size, Image.BILINEAR)) for c in crops])

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw ``(V, N, D)`` of crops ``(N, H, W, 3)`` uint8."""
        x = self._resize(np.asarray(crops)).astype(np.float32).transpose(0, 3, 1, 2)
        x = x / np.float32(127.5) - np.float32(1.0)
        if self.flip:
            x = np.concatenate([x, x[:, :, :, ::-1]])
        x = np.ascontiguousarray(x)
        step = self.batch_size * (2 if self.flip else 1)
        out = [self.session.run(None, {self.input_name: x[s:s + step]})[0] for s in range(0, len(x), step)]
        emb = np.concatenate(out).astype(np.float32, copy=False)
        return emb.reshape(-1, len(crops), emb.shape[-1])
