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
from facebone.data.labels import check_class_count

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
        self.skipped: dict[str, int] = {}
        self._examples: dict[str, str] = {}
        dirs = []
        for entry in self._scan(self.root):
            if entry.is_dir():
                dirs.append(Path(entry.path))
            else:
                self._skip("broken link" if _is_broken_link(entry) else "file outside a class folder", entry.path)
        dirs.sort()
        files: list[str] = []
        labels: list[int] = []
        numeric = bool(dirs) and all(d.name.isdigit() for d in dirs)
        classes: list[str] = []
        for d in dirs:
            imgs = []
            for f in self._scan(d):
                if f.is_file() and os.path.splitext(f.name)[1].lower() in IMAGE_EXTENSIONS:
                    imgs.append(f.name)
                elif _is_broken_link(f):
                    self._skip("broken link", f.path)
                elif f.is_dir():
                    self._skip("nested folder", f.path)
                else:
                    self._skip("non-image file", f.path)
            imgs.sort()
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
        if numeric:
            check_class_count(self.labels, self.num_classes,
                              where=lambda i: f"{self.root / self.files[i].split('/')[0]}: class folder name")
        self.corrupt: list[str] = []
        self._image_size: tuple[int, int] | None = None
        self.notes: list[str] = [self.skipped_note()] if self.skipped else []

    @staticmethod
    def _scan(directory: Path) -> list[os.DirEntry]:
        try:
            with os.scandir(directory) as it:
                return [e for e in it if not e.name.startswith(".")]
        except OSError as exc:
            raise DataError(f"{directory}: cannot list the folder ({exc.strerror})") from None

    def _skip(self, what: str, path: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1
        self._examples.setdefault(what, path)

    def skipped_note(self) -> str:
        """One line: what was left out of the set and why, with an example of each kind."""
        order = ("broken link", "nested folder", "non-image file", "file outside a class folder")
        parts = [f"{self.skipped[what]} {what}{'s' if self.skipped[what] > 1 else ''} (e.g. {self._examples[what]})"
                 for what in sorted(self.skipped, key=order.index)]
        return f"{self.root}: skipped " + ", ".join(parts) + "; only images directly inside class folders are used"

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


def _is_broken_link(entry: os.DirEntry) -> bool:
    return entry.is_symlink() and not os.path.exists(entry.path)


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
