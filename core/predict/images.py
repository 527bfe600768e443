"""What ``Predictor.embed`` accepts, turned into uint8 RGB arrays ``(H, W, 3)``.

One input or a sequence of them, each a file path (read as ``cv2.imread`` reads it: EXIF
orientation applied, see :mod:`facebone.data.image_file`), a PIL image, or a uint8 array
``(H, W, 3)`` RGB (``(H, W)`` grey and ``(H, W, 4)`` RGBA are accepted too). A uint8 array
``(N, H, W, 3)`` is N images. A bad input does not stop the others: :func:`load_one` raises a
:class:`DataError` naming it, and the caller records it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facebone.errors import DataError


def _is_single(obj: Any) -> bool:
    if isinstance(obj, (str, os.PathLike)):
        return True
    if isinstance(obj, np.ndarray):
        return obj.ndim in (2, 3)
    return type(obj).__module__.startswith("PIL.") or hasattr(obj, "getbands")


def as_list(images: Any) -> list[Any]:
    """``images`` as a list of single inputs (an ``(N, H, W, 3)`` array becomes N arrays)."""
    if _is_single(images):
        return [images]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images)
        raise DataError(f"images: an array must be (H, W, 3) or (N, H, W, 3), got shape {images.shape}")
    if hasattr(images, "numpy") and hasattr(images, "shape"):  # a torch tensor
        return as_list(np.asarray(images))
    if isinstance(images, Sequence) or hasattr(images, "__iter__"):
        return list(images)
    raise DataError(f"images: expected a path, a PIL image, a uint8 array or a list of them, got {type(images).__name__}")


def name_of(item: Any, index: int) -> str:
    """How an input is named in messages and output files: its path, or ``#index``."""
    return str(item) if isinstance(item, (str, os.PathLike)) else f"#{index}"


def as_rgb(array: Any, where: str) -> np.ndarray:
    """A uint8 ``(H, W, 3)`` array (grey repeated, alpha dropped); DataError otherwise."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise DataError(f"{where}: expected uint8 RGB pixels, got dtype {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise DataError(f"{where}: expected an image (H, W, 3), got shape {a.shape}")
    return np.ascontiguousarray(a[:, :, :3])


def load_one(item: Any, where: str) -> np.ndarray:
    """The RGB pixels of one input; DataError naming ``where`` if it cannot be read."""
    if isinstance(item, (str, os.PathLike)):
        from facebone.data.image_file import read_image

        return read_image(Path(item))
    if hasattr(item, "getbands") and hasattr(item, "convert"):  # PIL image
        return np.asarray(item.convert("RGB"))
    return as_rgb(item, where)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
"""File suffixes taken from folders (case-insensitive)."""


def expand_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given, and the image files under each folder (recursively, sorted); DataError
    for a path that does not exist."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return out
