"""Image folders: one sub-folder per identity (as ``torchvision.datasets.ImageFolder``).

Labels are the sorted position of each sub-folder, except when every sub-folder name is a
decimal integer: then the name is the label (so ``00042/`` is class 42 and a
RecordIO -> folder -> RecordIO round trip keeps every label).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from facebone.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def is_image_folder(path: Path) -> bool:
    """True for a directory without .rec files (candidates are checked by :class:`ImageFolder`)."""
    return path.is_dir() and not any(path.glob("*.rec"))


class ImageFolder:
    """An image-folder source: ``len``, ``labels`` (int64), ``num_classes``, ``classes``,
    ``files``, ``image_bytes(i)``."""

    layout = "folder"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: not a directory")
        dirs = sorted(d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        files: list[str] = []
        labels: list[int] = []
        numeric = bool(dirs) and all(d.name.isdigit() for d in dirs)
        classes: list[str] = []
        for d in dirs:
            imgs = sorted(f.name for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())
            if not imgs:
                continue
            label = int(d.name) if numeric else len(classes)
            classes.append(d.name)
            files.extend(f"{d.name}/{name}" for name in imgs)
            labels.extend([label] * len(imgs))
        if not files:
            what = "no sub-folders" if not dirs else f"{len(dirs)} sub-folders but no images ({', '.join(IMAGE_EXTENSIONS)})"
            raise DataError(f"{self.root}: empty image folder: {what}; expected one sub-folder of images per identity")
        self.classes = classes
        self.files = files
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_classes = int(self.labels.max()) + 1 if numeric else len(classes)
        self.corrupt: list[str] = []
        self._image_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def where(self, i: int) -> str:
        return str(self.root / self.files[i])

    def image_bytes(self, i: int) -> bytes:
        try:
            return (self.root / self.files[i]).read_bytes()
        except OSError as exc:
            raise DataError(f"{self.where(i)}: cannot read ({exc.strerror})") from None

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the first image."""
        if self._image_size is None:
            from facebone.data.decode import probe_size

            self._image_size = probe_size(self.image_bytes(0), self.where(0))
        return self._image_size


def image_extension(data: bytes) -> str:
    """File extension for encoded image bytes, from their signature."""
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:2] == b"BM":
        return ".bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    return ".jpg"


def write_image_folder(out_dir: str | os.PathLike, samples: Iterator[tuple[bytes, int, str]],
                       *, num_classes: int) -> int:
    """Write (image bytes, label, stem) samples as ``out_dir/<label>/<stem><ext>``; labels
    are zero-padded so that sorted names are numeric order. Returns the image count."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(max(num_classes - 1, 0))))
    n = 0
    made: set[int] = set()
    for data, label, stem in samples:
        d = out / f"{int(label):0{width}d}"
        if label not in made:
            d.mkdir(exist_ok=True)
            made.add(label)
        (d / f"{stem}{image_extension(data)}").write_bytes(data)
        n += 1
    return n
