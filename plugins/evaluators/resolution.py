"""Resolution settings shared by the multi-resolution protocols (BTNet's, research/btnet.md §3).

A *side* of a pair (or a view of an IJB image) is ``(reso, upsample, model)``: the face is
resized to ``reso`` x ``reso``, then, with ``upsample``, back to the model's input size; the
embedder gets it at that size. ``model`` chooses the path of a backbone that routes inputs by
size: ``auto`` (by the image's size), ``trunk`` (the path at the input size), ``branch`` (the
path at ``reso``). Imports torch lazily.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

MODELS = ("auto", "trunk", "branch")
FILTERS = ("bilinear", "bicubic", "area", "nearest")


@dataclasses.dataclass(frozen=True)
class Side:
    """One side of a multi-resolution setting."""

    reso: int
    upsample: bool = False
    model: str = "auto"

    def problems(self, which: str) -> list[str]:
        out = []
        if self.reso < 1:
            out.append(f"reso{which} must be a positive size, got {self.reso}")
        if self.model not in MODELS:
            out.append(f"model{which} must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.model == "branch" and self.upsample:
            out.append(f"model{which} = 'branch' feeds the {self.reso}x{self.reso} face to its branch; "
                       f"it contradicts upsample{which} = true")
        return out

    def label(self, image_size: int) -> str:
        """``14`` (native), ``14up`` (upsampled to the input size), ``14@trunk`` / ``14@branch`` (forced)."""
        text = str(self.reso) + ("up" if self.upsample and self.reso != image_size else "")
        return text + ("" if self.model == "auto" else f"@{self.model}")

    def branch(self, image_size: int) -> int | None:
        """The ``branch`` argument of the embedder for this side (None: routed by size)."""
        return {"auto": None, "trunk": image_size, "branch": self.reso}[self.model]


def resize_images(images: np.ndarray, size: int, *, filter: str = "bilinear", antialias: bool = False,
                  chunk: int = 256) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` resized to ``size`` x ``size`` (rounded back to uint8), in chunks.

    ``antialias=False`` with ``bilinear`` is OpenCV's / MXNet's ``INTER_LINEAR`` (what the
    original's evaluation scripts use); ``antialias=True`` is PIL's downscaling.
    """
    import torch
    import torch.nn.functional as F

    images = np.asarray(images)
    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, 3), np.uint8)
    kwargs: dict[str, Any] = {} if filter in ("nearest", "area") else {"align_corners": False,
                                                                      "antialias": bool(antialias)}
    for lo in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[lo:lo + chunk])).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(size, size), mode=filter, **kwargs).round_().clamp_(0, 255)
        out[lo:lo + chunk] = y.to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def degrade(images: np.ndarray, side: Side, image_size: int, *, filter: str = "bilinear",
            antialias: bool = False) -> np.ndarray:
    """The faces of one side: resized to ``side.reso``, then to ``image_size`` if ``side.upsample``."""
    out = resize_images(images, side.reso, filter=filter, antialias=antialias)
    if side.upsample:
        out = resize_images(out, image_size, filter=filter, antialias=antialias)
    return out


def two_views(embedder: Any, crops: np.ndarray, sides: tuple, *, filter: str = "bilinear",  # type: ignore[type-arg]
              antialias: bool = False) -> np.ndarray:
    """BTNet's two views of aligned crops (research/btnet.md §3.2): ``(2, N, D)`` float32 with
    ``e(crop at side 1)`` and ``e(mirror of the crop at side 2)``; their sum is the image feature
    (for ``112 & 112`` the usual flip test)."""
    size = int(embedder.image_size)
    out = []
    for k, side in enumerate(sides):
        faces = degrade(crops, side, size, filter=filter, antialias=antialias)
        if k == 1:
            faces = np.ascontiguousarray(faces[:, :, ::-1])
        branch = side.branch(size)
        views = embedder.views(faces) if branch is None else embedder.views(faces, branch=branch)
        out.append(np.asarray(views, dtype=np.float32)[0])
    return np.stack(out)
