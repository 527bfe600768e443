"""Where the face is: five landmarks or a box per image, checked and turned into a crop or a RoI.

Conventions:

* **Landmarks** ``(5, 2)`` ``(x, y)`` (eye centres, nose tip, mouth corners, as detectors give
  them and InsightFace's IJB meta files list them) use OpenCV's convention, pixel centres on
  integers, exactly as :mod:`facebone.data.align`, which does the alignment.
* **Boxes** ``(x1, y1, x2, y2[, angle])`` are RoIs as the warps take them
  (:mod:`facebone.plugins.warps.mapping`): an image spans ``[0, W] x [0, H]``, pixel centres
  at ``+0.5``; ``angle`` in radians turns the box's x axis towards +y.

Crops are affine resamplings done by :func:`facebone.data.align.warp_affine` (as
``cv2.warpAffine``: bilinear, black outside the image). The matrices here map source pixels
to crop pixels in OpenCV's convention, like those of :func:`similarity_transforms`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from facebone.data.align import ARCFACE_TEMPLATE, similarity_transforms
from facebone.errors import DataError

BOX_MARGIN = 0.2
"""Margin of the crop a box gives for the Cartesian warp: a square of side ``(1 + margin) x
(w + h) / 2`` around the box centre (ibug face_embedding's ``crop_face(bbox, extend=0.2)``)."""


def per_face(values: Any, n: int, what: str) -> list[Any]:
    """``values`` for ``n`` faces as a list (one entry per face): an array whose first axis has
    ``n`` entries, or a sequence of ``n`` per-face entries; one face's value alone when ``n`` is 1."""
    if isinstance(values, np.ndarray) or (hasattr(values, "shape") and hasattr(values, "dtype")):
        a = np.asarray(values)
        if n == 1 and a.ndim in (1, 2) and (a.ndim == 1 or a.shape[0] != 1):
            return [a]
        if a.ndim >= 1 and a.shape[0] == n:
            return list(a)
        raise DataError(f"{what}: {n} images but {what} of shape {a.shape} (expected one per image)")
    values = list(values)
    if n == 1 and values and np.ndim(values[0]) == 0:  # one box as a flat list of numbers
        return [np.asarray(values, dtype=np.float64)]
    if len(values) != n:
        raise DataError(f"{what}: {n} images but {len(values)} {what}")
    return values


def check_landmarks(points: Any) -> np.ndarray:
    """One face's five landmarks as float64 ``(5, 2)``; DataError for another shape or non-finite values."""
    try:
        a = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"landmarks: not numbers ({points!r:.60})") from None
    if a.shape == (10,):
        a = a.reshape(5, 2)
    if a.shape != (5, 2):
        raise DataError(f"landmarks: expected 5 (x, y) points, shape (5, 2) or 10 numbers; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError("landmarks: not all finite")
    return a


def check_box(box: Any, image_hw: tuple[int, int]) -> np.ndarray:
    """One face's box as float64 ``(5,)`` (angle 0 added); DataError for a bad shape, an empty
    box or one that lies entirely outside the ``image_hw`` image."""
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"box: not numbers ({box!r:.60})") from None
    if b.shape not in ((4,), (5,)):
        raise DataError(f"box: expected (x1, y1, x2, y2) or (x1, y1, x2, y2, angle), got {b.size} numbers")
    if not np.isfinite(b).all():
        raise DataError(f"box {b.tolist()}: not all finite")
    if b.shape == (4,):
        b = np.append(b, 0.0)
    x1, y1, x2, y2 = b[:4]
    if not (x2 > x1 and y2 > y1):
        raise DataError(f"box {_fmt(b)}: empty (needs x2 > x1 and y2 > y1)")
    h, w = image_hw
    corners = _box_corners(b)
    if corners[:, 0].max() <= 0 or corners[:, 0].min() >= w or corners[:, 1].max() <= 0 or corners[:, 1].min() >= h:
        raise DataError(f"box {_fmt(b)}: outside the {w}x{h} image")
    return b


def _fmt(b: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:g}" for v in b[:4]) + (f", angle {b[4]:g})" if b[4] else ")")


def _box_corners(b: np.ndarray) -> np.ndarray:
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    hw, hh = (b[2] - b[0]) / 2, (b[3] - b[1]) / 2
    c, s = math.cos(b[4]), math.sin(b[4])
    local = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    return local @ np.array([[c, s], [-s, c]]) + [cx, cy]


# -- crop matrices (source -> crop, OpenCV pixel convention) ---------------------------------

def _to_opencv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``dst = a @ src + b`` in continuous coordinates (centres at +0.5) as an OpenCV matrix."""
    m = np.empty((2, 3))
    m[:, :2] = a
    m[:, 2] = a @ [0.5, 0.5] + b - 0.5
    return m


def _frame(box: np.ndarray, scale: tuple[float, float], dst_centre: tuple[float, float]) -> np.ndarray:
    """Source -> crop: the box centre goes to ``dst_centre``, its axes (turned by its angle)
    to the crop's axes, scaled by ``scale``."""
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    c, s = math.cos(box[4]), math.sin(box[4])
    a = np.diag(scale) @ np.array([[c, s], [-s, c]])  # R(-angle), then scale
    return _to_opencv(a, np.asarray(dst_centre) - a @ centre)


def margin_crop_matrix(box: np.ndarray, size: int, margin: float = BOX_MARGIN) -> np.ndarray:
    """The square crop of side ``(1 + margin) (w + h) / 2`` around ``box``, resampled to ``size``."""
    side = (1.0 + margin) * ((box[2] - box[0]) + (box[3] - box[1])) / 2
    return _frame(box, (size / side, size / side), (size / 2, size / 2))


def margin_crop_side(box: np.ndarray, margin: float = BOX_MARGIN) -> float:
    """Source pixels across the margin crop of ``box`` (its native resolution)."""
    return (1.0 + margin) * ((box[2] - box[0]) + (box[3] - box[1])) / 2


def roi_crop_matrix(box: np.ndarray, size: int, fixed_roi: Sequence[float]) -> np.ndarray:
    """The crop of side ``size`` whose central RoI ``fixed_roi`` ``(x1, y1, x2, y2)`` (crop
    pixels) shows ``box``: what a warp with a fixed RoI then sees as the box. Used where the warp
    cannot take the box itself (an ONNX graph with the warp baked in)."""
    fw, fh = fixed_roi[2] - fixed_roi[0], fixed_roi[3] - fixed_roi[1]
    scale = (fw / (box[2] - box[0]), fh / (box[3] - box[1]))
    return _frame(box, scale, ((fixed_roi[0] + fixed_roi[2]) / 2, (fixed_roi[1] + fixed_roi[3]) / 2))


def fixed_roi(size: int, roi_ratio: float, style: str = "exact") -> tuple[float, float, float, float]:
    """The RoI warps' fixed central box in a ``size`` crop (their ``fixed_roi`` option): side
    ``roi_ratio x size`` ("exact"), or ibug's truncated integer box ("ibug": side and corners
    truncated to integers in its integer-centre convention, then +0.5)."""
    if style == "ibug":
        side = int(size * roi_ratio)
        lo, hi = int(0.5 * size - 0.5 * side) + 0.5, int(0.5 * size + 0.5 * side) + 0.5
        return (lo, lo, hi, hi)
    lo, hi = size * (1 - roi_ratio) / 2, size * (1 + roi_ratio) / 2
    return (lo, lo, hi, hi)


def landmark_matrix(points: np.ndarray, size: int) -> np.ndarray:
    """Similarity transform of five landmarks onto the ArcFace template scaled to ``size``
    (as the IJB evaluator aligns); DataError when the points are degenerate."""
    m = similarity_transforms(points[None], ARCFACE_TEMPLATE * (size / 112.0))[0]
    if not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-12:
        raise DataError("landmarks: degenerate (no similarity transform maps them onto the template)")
    return m


def landmark_native_size(points: np.ndarray) -> float:
    """Source pixels across the aligned 112 crop of these landmarks (their native resolution)."""
    m = similarity_transforms(points[None])[0]
    return 112.0 / math.sqrt(abs(np.linalg.det(m[:, :2])))


def mirror_rois(rois: np.ndarray, width: int) -> np.ndarray:
    """The RoIs ``(N, 5)`` of the horizontally mirrored ``width``-wide image (x -> W - x, angle -> -angle)."""
    out = np.array(rois, dtype=np.float64, copy=True)
    out[:, 0], out[:, 2] = width - rois[:, 2], width - rois[:, 0]
    out[:, 4] = -rois[:, 4]
    return out


def served_size(native: float, sizes: Sequence[int]) -> int:
    """For a backbone serving several input sizes: the smallest one holding the face at its
    native resolution (``native`` pixels across), else the largest."""
    fits = [s for s in sizes if s >= native - 1e-6]
    return min(fits) if fits else max(sizes)
