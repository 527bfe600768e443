from __future__ import annotations

import io

import numpy as np
import pytest


def encode(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def encode_png():
    """Encode a uint8 (H, W, 3) array as PNG bytes."""
    return encode


@pytest.fixture
def images():
    """Twelve small PNG images (4 labels x 3) with their pixels."""
    rng = np.random.default_rng(0)
    arrs = [rng.integers(0, 256, (12, 10, 3), dtype=np.uint8) for _ in range(12)]
    return [(encode(a), i // 3) for i, a in enumerate(arrs)], arrs
