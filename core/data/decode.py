"""Image decoding: torchvision's libjpeg-turbo / libpng decoder when it is available,
PIL as the fallback. Every decoder returns RGB uint8."""
from __future__ import annotations

import io
import struct
import warnings
from typing import Callable

import numpy as np
import torch

from facebone.errors import DataError

DECODERS = ("auto", "torchvision", "pil")


def _torchvision_decode(data: bytes) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    with warnings.catch_warnings():
        # non-writable buffer (never written to); torchvision 0.29's deprecation notice
        warnings.simplefilter("ignore")
        raw = torch.frombuffer(data, dtype=torch.uint8)
        return decode_image(raw, mode=ImageReadMode.RGB)


def _pil_decode(data: bytes) -> torch.Tensor:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _has_torchvision() -> bool:
    try:
        import torchvision.io  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means: use PIL
        return False
    return True


def decode_image(data: bytes, *, decoder: str = "auto", where: str = "image") -> torch.Tensor:
    """Decode an encoded image to a uint8 tensor (3, H, W), RGB.

    ``decoder``: 'torchvision', 'pil', or 'auto' (torchvision, then PIL if torchvision
    cannot read it). Undecodable data raises :class:`DataError` naming ``where``.
    """
    if decoder not in DECODERS:
        raise DataError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    if not data:
        raise DataError(f"{where}: empty record, not an image")
    check_pixels(data, where)
    errors = []
    order = ["torchvision", "pil"] if decoder == "auto" else [decoder]
    for name in order:
        if name == "torchvision" and decoder == "auto" and not _TV:
            continue
        try:
            img = _torchvision_decode(data) if name == "torchvision" else _pil_decode(data)
            if img.ndim == 3 and img.shape[0] == 3:
                return img
            errors.append(f"{name}: unexpected shape {tuple(img.shape)}")
        except Exception as exc:  # noqa: BLE001 - decoder errors become one data error
            errors.append(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise DataError(f"{where}: not a decodable image ({len(data)} bytes; {'; '.join(errors)})")


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""JPEG start-of-frame markers (they carry the image size)."""


def header_size(data: bytes) -> tuple[int, int] | None:
    """(H, W) from a PNG or JPEG header, read without decoding; None for other or odd data."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return h, w
        return None
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in _SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return h, w
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def check_pixels(data: bytes, where: str) -> None:
    """DataError if the encoded image declares more pixels than :data:`facebone.limits.MAX_IMAGE_PIXELS`.

    Read from the header (PNG and JPEG directly, other formats through PIL's lazy open), before
    any decoder allocates the image.
    """
    from facebone.limits import MAX_IMAGE_PIXELS

    size = header_size(data)
    if size is None and data[:2] != b"\xff\xd8" and data[:4] != b"\x89PNG":
        try:
            from PIL import Image

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as im:
                    size = (im.height, im.width)
        except Exception:  # noqa: BLE001 - not an image PIL knows: the decoders say so
            return
    if size is None:
        return
    h, w = size
    if h * w > MAX_IMAGE_PIXELS.value():
        raise DataError(f"{where}: image of {w}x{h} pixels is too large to decode ({MAX_IMAGE_PIXELS.hint()})")


def to_network_range(img: torch.Tensor) -> torch.Tensor:
    """uint8 RGB -> float32 in [-1, 1] as ``(x/255 - 0.5)/0.5``: the one normalisation that
    training and embedding share."""
    return img.float().div_(127.5).sub_(1.0)


def probe_size(data: bytes, where: str) -> tuple[int, int]:
    """(H, W) of an encoded image from its header; DataError naming ``where`` if unreadable."""
    from PIL import Image

    size = header_size(data)
    if size is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as im:
                    size = (im.height, im.width)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a data error
            raise DataError(f"{where}: not a decodable image ({exc})") from None
    check_pixels(data, where)
    return size


def resize_uint8(img: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize a uint8 (3, H, W) or (N, 3, H, W) image to ``size`` (antialiased when shrinking)."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    x = img.unsqueeze(0) if img.ndim == 3 else img
    aa = mode in ("bilinear", "bicubic")
    y = torch.nn.functional.interpolate(x.float(), size=size, mode=mode, antialias=aa,
                                        **({} if mode in ("nearest", "area") else {"align_corners": False}))
    y = y.round_().clamp_(0, 255).to(torch.uint8)
    return y[0] if img.ndim == 3 else y


def decode_many(bins: list[bytes], *, size: int | tuple[int, int] | None = None, decoder: str = "auto",
                where: Callable[[int], str] = lambda i: f"image {i}") -> np.ndarray:
    """Decode a list of encoded images into one uint8 array (N, H, W, 3)."""
    if not bins:
        return np.zeros((0, 0, 0, 3), np.uint8)
    hw = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)
    first = decode_image(bins[0], decoder=decoder, where=where(0))
    hw = hw or tuple(first.shape[-2:])
    from facebone.limits import MAX_DECODED_BYTES

    need = len(bins) * hw[0] * hw[1] * 3
    if need > MAX_DECODED_BYTES.value():
        raise DataError(f"{where(0)}: {len(bins)} images of {hw[1]}x{hw[0]} would take {need:,} bytes decoded "
                        f"({MAX_DECODED_BYTES.hint()})")
    out = np.empty((len(bins), hw[0], hw[1], 3), np.uint8)
    view = torch.from_numpy(out).permute(0, 3, 1, 2)
    for i, b in enumerate(bins):
        img = first if i == 0 else decode_image(b, decoder=decoder, where=where(i))
        if tuple(img.shape[-2:]) != hw:
            if size is None:
                raise DataError(f"{where(i)}: size {tuple(img.shape[-2:])} differs from the first image's {hw}")
            img = resize_uint8(img, hw)
        view[i] = img
    return out


_TV = _has_torchvision()
