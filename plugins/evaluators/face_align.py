"""Five-point face alignment to the ArcFace template (similarity transform, as InsightFace's IJB scripts)."""
from __future__ import annotations

import numpy as np

ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
"""Eye centres, nose tip and mouth corners in a 112 x 112 crop (InsightFace's template, x shifted by 8)."""


def similarity_transforms(landmarks: np.ndarray, template: np.ndarray = ARCFACE_TEMPLATE) -> np.ndarray:
    """Least-squares similarity transforms (Umeyama) ``(B, 2, 3)`` mapping each ``(5, 2)`` landmark set
    onto ``template``, batched (the estimate of ``skimage.transform.SimilarityTransform``)."""
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
    d = np.ones((len(src), 2))
    d[np.linalg.det(a) < 0, 1] = -1.0
    u, s, vt = np.linalg.svd(a)
    r = u @ (d[:, :, None] * vt)
    var = (sc ** 2).sum((1, 2)) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = (s * d).sum(1) / var
    m = np.empty((len(src), 2, 3))
    m[:, :, :2] = scale[:, None, None] * r
    m[:, :, 2] = mu_d - np.einsum("bij,bj->bi", m[:, :, :2], mu_s[:, 0])
    return m


def warp(image: np.ndarray, matrix: np.ndarray, size: int = 112) -> np.ndarray:
    """``image`` (H, W, 3) uint8 warped by ``matrix`` (2, 3; pixel centres at integers, as OpenCV's
    ``warpAffine``) into a ``size`` x ``size`` crop, bilinear, black outside."""
    from PIL import Image

    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    unshift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1.0]])
    inv = np.linalg.inv(shift @ full @ unshift)  # PIL samples at pixel centres (x + 0.5)
    out = Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, data=tuple(inv[:2].reshape(-1)),
                                           resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(out)
