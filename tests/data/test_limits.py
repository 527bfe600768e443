"""Tiny inputs that would decode into huge objects are refused before anything is allocated."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

from facebone.data.decode import check_pixels, decode_image, decode_many, header_size, probe_size
from facebone.data.verification_bin import load_bin_raw
from facebone.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bad_inputs as B  # noqa: E402


@pytest.mark.parametrize("fmt, kw", [("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}),
                                     ("JPEG", {"exif": b"Exif\x00\x00" + bytes(200)})])
def test_header_size_reads_png_and_jpeg(fmt, kw):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((37, 53, 3), np.uint8)).save(buf, format=fmt, **kw)
    assert header_size(buf.getvalue()) == (37, 53)
    assert header_size(b"GIF89a...") is None and header_size(b"\xff\xd8\x00") is None


@pytest.mark.parametrize("data", [B.huge_png_header(), B.huge_jpeg_header()])
def test_huge_images_are_refused_from_their_header(data, monkeypatch):
    with pytest.raises(DataError, match=r"x: image of 15000x15000 pixels is too large to decode \(the limit is "
                                        r"16,777,216 pixels; set FACEBONE_MAX_IMAGE_PIXELS to raise it\)"):
        decode_image(data, where="x")
    with pytest.raises(DataError, match="too large"):
        probe_size(data, "x")
    monkeypatch.setenv("FACEBONE_MAX_IMAGE_PIXELS", "3e8")
    check_pixels(data, "x")  # raised: allowed
    assert probe_size(data, "x") == (15000, 15000)


def test_other_formats_are_checked_through_pil(monkeypatch):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(buf, format="BMP")
    monkeypatch.setenv("FACEBONE_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(DataError, match="image of 30x20 pixels is too large"):
        decode_image(buf.getvalue(), where="x")


def test_bad_limit_values_are_one_line(monkeypatch):
    from facebone.errors import ConfigError

    monkeypatch.setenv("FACEBONE_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ConfigError, match="FACEBONE_MAX_IMAGE_PIXELS='lots': expected a number of pixels"):
        check_pixels(B.png(), "x")


def test_bin_bombs(tmp_path, monkeypatch):
    for name, payload, match in [
        ("a.bin", B.bin_bytearray_bomb(), r"bytearray\(int\)"),
        ("b.bin", B.bin_huge_length(), "expected 10000000000 bytes"),
        ("c.bin", B.bin_nested(), r"expected a pickled \(images, issame\) pair"),
        ("d.bin", B.bin_of([B.png(), B.png()], [[True]]), "issame must be a flat list of booleans"),
    ]:
        with pytest.raises(DataError, match=match):
            load_bin_raw(B.write_pickle_bin(tmp_path / name, payload))
    monkeypatch.setenv("FACEBONE_MAX_BIN_BYTES", "500")
    with pytest.raises(DataError, match="more than 500 bytes once unpickled"):
        load_bin_raw(B.write_pickle_bin(tmp_path / "e.bin", B.bin_of([B.png(), B.png()], [True])))


def test_bytearrays_of_bytes_still_load(tmp_path):
    import pickle

    images = [bytearray(B.png(seed=1)), bytearray(B.png(seed=2))]
    bins, same = load_bin_raw(B.write_pickle_bin(tmp_path / "v.bin", pickle.dumps((images, [True]), protocol=2)))
    assert bins == [bytes(b) for b in images] and same.tolist() == [True]


def test_decoded_size_limit(monkeypatch):
    monkeypatch.setenv("FACEBONE_MAX_DECODED_BYTES", "10000")
    with pytest.raises(DataError, match=r"4 images of 32x32 would take 12,288 bytes decoded"):
        decode_many([B.png()] * 4)
    monkeypatch.delenv("FACEBONE_MAX_DECODED_BYTES")
    assert decode_many([B.png()] * 4).shape == (4, 32, 32, 3)
