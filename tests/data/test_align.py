"""Five-point alignment (facebone.data.align) and OpenCV-style image reading (facebone.data.image_file).

Agreement with InsightFace's own pipeline (OpenCV, skimage) is checked against fixtures in
tests/plugins/evaluators/test_insightface_ijb_fixtures.py; these tests pin the behaviour that
can be worked out by hand.
"""
from __future__ import annotations

import numpy as np
import pytest

from facebone.data.align import ARCFACE_TEMPLATE, WARP_METHODS, align_faces, similarity_transforms, warp_affine
from facebone.data.image_file import read_image
from facebone.errors import DataError


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def test_alignment_maps_landmarks_onto_the_template():
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lmk = (ARCFACE_TEMPLATE @ rot.T) * 1.7 + [20.0, -5.0]
    m = similarity_transforms(np.stack([ARCFACE_TEMPLATE, lmk]))
    np.testing.assert_allclose(m[0], [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    mapped = lmk @ m[1, :, :2].T + m[1, :, 2]
    np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE, atol=1e-9)
    # a bright pixel at the left eye of a 200x200 image lands on the template's left eye
    img = np.zeros((200, 200, 3), np.uint8)
    x, y = np.round(ARCFACE_TEMPLATE[0] * 1.5 + 30).astype(int)
    img[y - 1:y + 2, x - 1:x + 2] = 255
    for method in WARP_METHODS:
        crop = align_faces(img, ARCFACE_TEMPLATE * 1.5 + 30, method=method)[0]
        peak = np.unravel_index(np.argmax(crop[:, :, 0]), crop.shape[:2])
        assert abs(peak[1] - ARCFACE_TEMPLATE[0, 0]) <= 1 and abs(peak[0] - ARCFACE_TEMPLATE[0, 1]) <= 1


def test_degenerate_landmarks_give_a_non_finite_matrix_not_an_exception():
    lmk = np.stack([ARCFACE_TEMPLATE, np.full((5, 2), 7.0), ARCFACE_TEMPLATE])
    lmk[2, 3, 0] = np.nan
    m = similarity_transforms(lmk)
    assert np.isfinite(m[0]).all() and not np.isfinite(m[1]).all() and not np.isfinite(m[2]).all()


@pytest.mark.parametrize("method", WARP_METHODS)
def test_integer_shift_is_exact_and_outside_is_black(method):
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    np.testing.assert_array_equal(warp_affine(img, _shift(0, 0), (50, 40), method=method), img)
    out = warp_affine(img, _shift(3, -2), (50, 40), method=method)  # crop(x, y) = img(x - 3, y + 2)
    np.testing.assert_array_equal(out[:38, 3:], img[2:, :47])
    assert not out[:, :3].any() and not out[38:].any()
    grey = warp_affine(img[:, :, 0], _shift(3, -2), (50, 40), method=method)
    np.testing.assert_array_equal(grey, out[:, :, 0])


@pytest.mark.parametrize("method", WARP_METHODS)
def test_half_pixel_shift_rounds_and_fades_into_the_zero_border(method):
    """Between two pixels the mean, rounded (PIL truncated it); past the last column the border
    is 0, so the edge pixel fades to half (PIL clamped to the edge value)."""
    img = np.zeros((4, 4, 3), np.uint8)
    img[:, 0], img[:, 1], img[:, 2], img[:, 3] = 10, 13, 200, 201
    out = warp_affine(img, _shift(-0.5, 0), (4, 4), method=method)[0, :, 0]
    # crop x samples the image at x + 0.5: (10+13)/2 = 11.5 -> 12 (half to even / half up in
    # 1/1024 steps), (13+200)/2 = 106.5, (200+201)/2 = 200.5, (201+0)/2 = 100.5
    expected = {"float": [12, 106, 200, 100], "fixed": [12, 107, 201, 101]}[method]
    assert out.tolist() == expected


def test_fixed_point_positions_are_quantised_to_one_32nd_of_a_pixel():
    img = np.zeros((1, 3), np.uint8)
    img[0, 1] = 255
    for dx, fixed in ((0.016, 255), (0.0165, 247), (0.048, 239)):
        # crop pixel 1 samples the image at 1 - dx; OpenCV 4 rounds that to 1/32 px through
        # 1/1024 px, so the weight of image pixel 1 is 32/32, 31/32, 30/32
        assert warp_affine(img, _shift(dx, 0), (3, 1), method="fixed")[0, 1] == fixed
        assert warp_affine(img, _shift(dx, 0), (3, 1), method="float")[0, 1] == round(255 * (1 - dx))


def test_warp_rejects_bad_input():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="method"):
        warp_affine(img, _shift(0, 0), 4, method="pil")
    with pytest.raises(ValueError, match="uint8"):
        warp_affine(img.astype(np.float32), _shift(0, 0), 4)
    with pytest.raises(ValueError, match="not finite"):
        warp_affine(img, np.full((2, 3), np.nan), 4)


def _exif_jpeg(path, upright: np.ndarray, orientation: int) -> None:
    from PIL import Image

    stored = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    im = Image.fromarray(upright)
    if stored[orientation] is not None:
        im = im.transpose(stored[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_read_image_applies_the_exif_orientation_like_opencv(tmp_path, orientation):
    upright = np.zeros((24, 40, 3), np.uint8)
    upright[:8, :8] = (250, 20, 20)  # a red top-left corner
    path = tmp_path / "x.jpg"
    _exif_jpeg(path, upright, orientation)
    img = read_image(path)
    assert img.shape == (24, 40, 3) and img.dtype == np.uint8
    assert img[2, 2, 0] > 200 and img[2, 2, 1] < 60 and img[-3, -3].max() < 40
    raw = read_image(path, orient=False)
    assert raw.shape == ((40, 24, 3) if orientation in (6, 8) else (24, 40, 3))


def test_read_image_greyscale_and_alpha_like_opencv(tmp_path):
    from PIL import Image

    grey = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), np.repeat(grey[:, :, None], 3, 2))
    rgba = np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[:, :, :3])  # alpha dropped, not blended


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nope.jpg: image not found"):
        read_image(tmp_path / "nope.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad.jpg: cannot decode image"):
        read_image(tmp_path / "bad.jpg")
