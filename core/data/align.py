"""Five-point face alignment to the ArcFace template, as InsightFace's IJB scripts do it.

* :data:`ARCFACE_TEMPLATE`: eye centres, nose tip and mouth corners in a 112 x 112 crop.
* :func:`similarity_transforms`: least-squares similarity (Umeyama), batched; the estimate of
  ``skimage.transform.SimilarityTransform``.
* :func:`warp_affine`: the crop, as ``cv2.warpAffine(image, M, (size, size))`` with its defaults
  (``INTER_LINEAR``, ``BORDER_CONSTANT`` 0): bilinear interpolation in floating point where every
  neighbour outside the image is 0 (so a face cut by the image edge fades into black, as in
  OpenCV), then rounding to the nearest grey level. Within 1 grey level of OpenCV, which computes
  with fixed-point sample positions (1/32 px).
* :func:`align_faces`: both, for one image and its landmark sets.

Coordinates follow OpenCV: pixel ``(x, y)`` is centred on integer ``(x, y)``; ``x`` is the column.
"""
from __future__ import annotations

import numpy as np

ARCFACE_TEMPLATE = np.array([[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366],
                             [33.5493, 92.3655], [62.7299, 92.2041]], dtype=np.float32).astype(np.float64) + [8.0, 0.0]
"""(5, 2) ``(x, y)``: eye centres, nose tip and mouth corners in a 112 x 112 crop (InsightFace's
template for 96 x 112, its float32 values, ``x`` shifted by 8). Scale it by ``size / 112`` for
another crop size."""


def similarity_transforms(landmarks: np.ndarray, template: np.ndarray = ARCFACE_TEMPLATE) -> np.ndarray:
    """Least-squares similarity transforms ``(B, 2, 3)`` mapping each ``(K, 2)`` landmark set of
    ``landmarks`` (``(B, K, 2)`` or one ``(K, 2)``) onto ``template`` (Umeyama's estimate, as
    ``skimage.transform.SimilarityTransform.estimate``). A degenerate set (all points equal, NaN)
    gives a non-finite matrix."""
    src = np.asarray(landmarks, dtype=np.float64)
    if src.ndim == 2:
        src = src[None]
    dst = np.asarray(template, dtype=np.float64)
    n = src.shape[1]
    mu_s = src.mean(1, keepdims=True)
    mu_d = dst.mean(0)
    sc = src - mu_s
    dc = dst - mu_d
    a = np.einsum("ni,bnj->bij", dc, sc) / n  # (B, 2, 2) = dst_c^T src_c / n
    finite = np.isfinite(a).all(axis=(1, 2))
    a = np.where(finite[:, None, None], a, 0.0)  # SVD refuses NaN; those rows become NaN below
    d = np.ones((len(src), 2))
    d[np.linalg.det(a) < 0, 1] = -1.0
    u, s, vt = np.linalg.svd(a)
    r = u @ (d[:, :, None] * vt)
    var = (sc ** 2).sum((1, 2)) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(finite, (s * d).sum(1), np.nan) / var
    m = np.empty((len(src), 2, 3))
    m[:, :, :2] = scale[:, None, None] * r
    m[:, :, 2] = mu_d - np.einsum("bij,bj->bi", m[:, :, :2], mu_s[:, 0])
    return m


WARP_METHODS = ("fixed", "float")
"""``fixed``: OpenCV 4's arithmetic (bit-identical to ``cv2.warpAffine`` 3.x and 4.x); ``float``:
bilinear in float32 then rounding (OpenCV 5, within 1 grey level)."""


def _inverse_affine(m: np.ndarray) -> np.ndarray:
    """Crop pixel -> source position, the inverse of ``m`` computed in OpenCV's order of
    operations (so that fixed-point rounding sees the same doubles)."""
    det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    det = 1.0 / det if det != 0 else 0.0
    a, b = m[1, 1] * det, -m[0, 1] * det
    d, e = -m[1, 0] * det, m[0, 0] * det
    c = -a * m[0, 2] - b * m[1, 2]
    f = -d * m[0, 2] - e * m[1, 2]
    return np.array([[a, b, c], [d, e, f]])


def _sample_positions(inv: np.ndarray, width: int, height: int, method: str):
    """Integer top-left neighbour ``(x0, y0)`` and fractional offsets ``(fx, fy)`` of each crop
    pixel's source position. ``fixed``: positions rounded to 1/32 px through 1/1024 px
    intermediate values, offsets as integers 0..31; ``float``: float32 offsets in [0, 1)."""
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)
    if method == "fixed":
        # per column a * x and per row b * y + c, each rounded to 1/1024 px, then to 1/32 px
        # (truncating, after adding half a 1/32 step)
        cols = np.rint(np.outer(inv[:, 0], xs) * 1024.0).astype(np.int64)  # (2, W)
        rows = np.rint((np.outer(inv[:, 1], ys) + inv[:, 2:]) * 1024.0).astype(np.int64) + 16  # (2, H)
        fine = (rows[:, :, None] + cols[:, None, :]) >> 5  # (2, H, W) in 1/32 px
        whole = np.clip(fine >> 5, -32768, 32767).astype(np.int32)  # OpenCV keeps them as int16
        part = (fine & 31).astype(np.int32)
        return whole[0], whole[1], part[0], part[1]
    sx = (inv[0, 0] * xs[None, :] + inv[0, 1] * ys[:, None] + inv[0, 2]).astype(np.float32)
    sy = (inv[1, 0] * xs[None, :] + inv[1, 1] * ys[:, None] + inv[1, 2]).astype(np.float32)
    x0 = np.floor(sx)
    y0 = np.floor(sy)
    whole = np.clip(np.stack([x0, y0]), -(1 << 30), 1 << 30).astype(np.int32)
    return whole[0], whole[1], sx - x0, sy - y0


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int | tuple[int, int] = 112, *,
                method: str = "fixed") -> np.ndarray:
    """``image`` (H, W, C) or (H, W) uint8 mapped by the affine ``matrix`` (2, 3; source pixel
    -> crop pixel) into a crop of ``size`` (``int`` or ``(width, height)``), as
    ``cv2.warpAffine(image, matrix, size)`` with its defaults: bilinear, every neighbour outside
    the image 0 (a face cut by the image edge fades into black), rounded to the nearest level.

    ``method`` (see :data:`WARP_METHODS`): ``"fixed"`` reproduces OpenCV 3/4 exactly (sample
    positions quantised to 1/32 px, integer weights, rounding); ``"float"`` interpolates in
    float32 and rounds half to even, as OpenCV 5 (within 1 grey level of it). The two differ by
    a few levels where the image has sharp edges (noise, the image border). Vectorised over the
    crop's pixels."""
    if method not in WARP_METHODS:
        raise ValueError(f"warp_affine: method {method!r}; choose one of {', '.join(WARP_METHODS)}")
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"warp_affine expects a uint8 (H, W) or (H, W, C) image, got {img.dtype} {img.shape}")
    width, height = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    if not np.isfinite(m).all():
        raise ValueError(f"warp_affine: matrix {m.tolist()} is not finite")
    planes = img[:, :, None] if img.ndim == 2 else img
    h, w, c = planes.shape
    x0, y0, fx, fy = _sample_positions(_inverse_affine(m), width, height, method)
    # one zero pixel around the image: a neighbour further out reads the same zero
    dtype = np.int32 if method == "fixed" else np.float32
    padded = np.zeros((h + 2, w + 2, c), dtype)
    padded[1:-1, 1:-1] = planes
    flat = padded.reshape(-1, c)
    xa, xb = (np.clip(x0 + k, 0, w + 1) for k in (1, 2))
    top, bottom = (np.clip(y0 + k, 0, h + 1) * (w + 2) for k in (1, 2))

    def at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.take(flat, (rows + cols).reshape(-1), axis=0).reshape(height, width, c)

    fx = fx[..., None].astype(dtype)
    fy = fy[..., None].astype(dtype)
    if method == "fixed":  # weights in 1/1024: exact products of the 1/32 offsets
        gx = 32 - fx
        out = ((at(top, xa) * gx + at(top, xb) * fx) * (32 - fy)
               + (at(bottom, xa) * gx + at(bottom, xb) * fx) * fy + 512) >> 10
    else:
        gx = 1 - fx
        out = np.rint((at(top, xa) * gx + at(top, xb) * fx) * (1 - fy) + (at(bottom, xa) * gx + at(bottom, xb) * fx) * fy)
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out[:, :, 0] if img.ndim == 2 else out


def align_faces(image: np.ndarray, landmarks: np.ndarray, size: int = 112, *,
                template: np.ndarray = ARCFACE_TEMPLATE, method: str = "fixed") -> np.ndarray:
    """Aligned crops ``(B, size, size, C)`` uint8 of ``image`` for each five-point landmark set
    ``(B, 5, 2)`` (or one ``(5, 2)``), ``template`` scaled from 112 to ``size``."""
    matrices = similarity_transforms(landmarks, np.asarray(template, np.float64) * (size / 112.0))
    return np.stack([warp_affine(image, m, size, method=method) for m in matrices])
