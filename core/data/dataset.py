"""Training sets: a RecordIO pack or an image folder, as a torch Dataset.

Items are ``(image, label)``: ``image`` float32 (3, H, W), RGB, ``(x/255 - 0.5)/0.5`` in
[-1, 1], resized to ``image_size`` if stored at another size, randomly mirrored when
``hflip``, optionally degraded in resolution; ``label`` an int.

An item can be asked for by index, or by ``(index, seed)`` (what :func:`make_loader`'s
sampler yields): the seed then fixes the augmentation, so a run is reproducible whatever
the number of workers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from facebone.errors import DataError
from facebone.data.decode import decode_image, resize_uint8, to_network_range

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area")


@dataclass(frozen=True)
class Degradation:
    """Random resolution degradation: with probability ``p``, downsample to one of ``sizes``
    (chosen uniformly) with ``interpolation`` (antialiased for bilinear and bicubic), and
    with ``upsample`` back to the image size with the same filter. Without ``upsample`` one
    draw is made per batch (the first image's), so that a batch has one size: the collate
    function resizes the whole batch (see :meth:`TrainingSet.degrade_batch`)."""

    sizes: Sequence[int] = ()
    p: float = 0.0
    interpolation: str = "bilinear"
    upsample: bool = True

    @classmethod
    def from_table(cls, table: Any) -> "Degradation":
        """From an experiment's ``[data.degrade]`` table (:class:`facebone.experiment.schema.DegradeTable`)."""
        return cls(sizes=tuple(table.sizes), p=table.p, interpolation=table.filter, upsample=table.upsample)

    def draw(self, seed: int) -> int:
        """The size an image with augmentation ``seed`` is degraded to (0: not degraded)."""
        if self.p > 0 and ((seed >> 1) & 0xFFFF) / 65536.0 < self.p:
            return int(self.sizes[(seed >> 17) % len(self.sizes)])
        return 0

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise DataError(f"degradation interpolation {self.interpolation!r} unknown; "
                            f"choose one of {', '.join(INTERPOLATIONS)}")
        if not 0.0 <= self.p <= 1.0:
            raise DataError(f"degradation probability must be in [0, 1], got {self.p}")
        if self.p > 0 and not self.sizes:
            raise DataError("degradation with p > 0 needs at least one size")


class _Source:
    """Where encoded images come from: ``len``, ``labels``, ``num_classes``,
    ``image_bytes(i)``, ``where(i)``."""

    labels: np.ndarray
    num_classes: int

    def image_bytes(self, i: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def where(self, i: int) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class TrainingSet(torch.utils.data.Dataset):
    """A face training set (see module docstring). ``corrupt_count`` counts the records
    skipped in this process (``skip_corrupt``); the loader sums them across workers."""

    def __init__(self, source: Any, *, image_size: int | tuple[int, int], hflip: bool = True,
                 skip_corrupt: bool = False, degradation: Degradation | None = None, decoder: str = "auto"):
        self.source = source
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.hflip = hflip
        self.skip_corrupt = skip_corrupt
        self.degradation = degradation or Degradation()
        self.decoder = decoder
        self.corrupt_count = 0
        self.corrupt_messages: list[str] = list(getattr(source, "corrupt", []))

    @property
    def num_classes(self) -> int:
        return int(self.source.num_classes)

    @property
    def labels(self) -> np.ndarray:
        return self.source.labels

    @property
    def open_time_skipped(self) -> int:
        """Records dropped when the source was opened (bad header, offset past the end)."""
        return len(getattr(self.source, "corrupt", []))

    def __len__(self) -> int:
        return len(self.source.labels)

    def load_uint8(self, i: int) -> torch.Tensor:
        """Decoded image ``i``, uint8 (3, H, W) at ``image_size``; DataError if unreadable."""
        img = decode_image(self.source.image_bytes(i), decoder=self.decoder, where=self.source.where(i))
        return resize_uint8(img, self.image_size)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int] | None:
        if isinstance(item, tuple):
            i, seed = int(item[0]), int(item[1])
        else:
            i, seed = int(item), int(torch.randint(0, 2**62, ()).item())
        try:
            img = self.load_uint8(i)
        except DataError as exc:
            if not self.skip_corrupt:
                raise
            self.corrupt_count += 1
            if len(self.corrupt_messages) < 100:
                self.corrupt_messages.append(str(exc))
            return None
        img = self.augment(img, seed)
        x = to_network_range(img)
        if not self.degradation.upsample:  # the collate function degrades the whole batch
            return x, int(self.source.labels[i]), self.degradation.draw(seed)
        return x, int(self.source.labels[i])

    def augment(self, img: torch.Tensor, seed: int) -> torch.Tensor:
        """Mirror (bit 0 of ``seed``) and degrade (higher bits) a uint8 (3, H, W) image."""
        if self.hflip and seed & 1:
            img = img.flip(-1)
        deg = self.degradation
        size = deg.draw(seed) if deg.upsample else 0
        if size and (size, size) != tuple(self.image_size):
            img = resize_uint8(resize_uint8(img, (size, size), deg.interpolation), self.image_size, deg.interpolation)
        return img

    def degrade_batch(self, images: torch.Tensor, size: int) -> torch.Tensor:
        """A batch ``(N, 3, H, W)`` in [-1, 1] resized to ``size`` with the degradation's filter
        (``upsample = false``; ``size`` 0 leaves it as it is)."""
        if not size or (size, size) == tuple(images.shape[-2:]):
            return images
        mode = self.degradation.interpolation
        kwargs = {} if mode in ("nearest", "area") else {"align_corners": False, "antialias": True}
        return torch.nn.functional.interpolate(images, size=(size, size), mode=mode, **kwargs)


def open_training_set(path: str | os.PathLike, *, image_size: int | tuple[int, int], hflip: bool = True,
                      skip_corrupt: bool = False, degradation: Degradation | None = None,
                      decoder: str = "auto") -> TrainingSet:
    """A :class:`TrainingSet` from a RecordIO pack (a directory with ``train.rec``/``.idx``,
    or a ``.rec`` path) or an image folder (one sub-folder per identity)."""
    source = open_source(path, skip_corrupt=skip_corrupt)
    return TrainingSet(source, image_size=image_size, hflip=hflip, skip_corrupt=skip_corrupt,
                       degradation=degradation, decoder=decoder)


def open_source(path: str | os.PathLike, *, skip_corrupt: bool = False) -> Any:
    """The image source behind ``path``: a :class:`~facebone.data.pack.Pack` or an
    :class:`~facebone.data.folder.ImageFolder`."""
    from facebone.data.folder import ImageFolder, is_image_folder
    from facebone.data.pack import open_pack

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: training data not found")
    if p.is_file() or any(p.glob("*.rec")):
        return open_pack(p, skip_corrupt=skip_corrupt)
    if is_image_folder(p):
        return ImageFolder(p)
    if any(p.glob("*.idx")):
        raise DataError(f"{p}: has a .idx but no .rec file")
    raise DataError(f"{p}: neither a RecordIO pack (train.rec + train.idx) nor an image folder "
                    "(one sub-folder of images per identity)")
