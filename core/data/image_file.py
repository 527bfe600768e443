"""Reading an image file the way ``cv2.imread(path)`` (``IMREAD_COLOR``) does, as RGB.

OpenCV's default read turns the EXIF orientation tag into upright pixels, drops an alpha
channel and repeats a grey channel three times. Face landmarks (IJB's meta files, detectors run
on OpenCV images) refer to those upright pixels, so an image stored rotated with an orientation
tag must be turned the same way before alignment. JPEG and PNG decode to the same pixels as
OpenCV's decoder (both use libjpeg-turbo / libpng with their defaults). One difference stays:
OpenCV 4 does not orient WebP images, OpenCV 5 does (facebone always does).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from facebone.errors import DataError


def _upright(img):  # type: ignore[no-untyped-def]
    """``img`` turned as its EXIF orientation tag says (unchanged when it has none or a bad one)."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block is ignored, as OpenCV does
        return img


def read_image(path: str | Path, *, orient: bool = True) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB pixels of the image file ``path``: ``cv2.imread(path)`` converted
    to RGB. ``orient=False`` ignores the EXIF orientation (``cv2.IMREAD_IGNORE_ORIENTATION``).

    A missing or undecodable file raises :class:`DataError` naming it."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img = _upright(img) if orient else img
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: image not found") from None
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot decode image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
