"""InsightFace .bin verification sets: reading py2/py3 pickles safely, writing."""
from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from facebone.errors import DataError
from facebone.data.verification_bin import load_bin, load_bin_raw, write_bin


CALLED: list[str] = []


def _mark_called(*args):
    CALLED.append("ran")
    return "pwned"


class Evil:
    def __reduce__(self):
        return (_mark_called, ("x",))


def _pairs(n=2):
    from PIL import Image  # noqa: F401
    import io

    def encode(a):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        return buf.getvalue()

    rng = np.random.default_rng(1)
    arrs = [rng.integers(0, 256, (8, 6, 3), dtype=np.uint8) for _ in range(2 * n)]
    return arrs, [encode(a) for a in arrs], [True, False][:n] + [True] * max(0, n - 2)


def test_write_then_load_is_lossless_and_compact(tmp_path):
    arrs, bins, same = _pairs()
    write_bin(tmp_path / "v.bin", bins, same)
    images, issame = load_bin(tmp_path / "v.bin")
    assert images.dtype == np.uint8 and images.shape == (4, 8, 6, 3)
    assert np.array_equal(images, np.stack(arrs))
    assert issame.dtype == bool and issame.tolist() == same
    # what InsightFace does to read it
    with open(tmp_path / "v.bin", "rb") as f:
        b, s = pickle.load(f, encoding="bytes")
    assert b == bins and s == same


def test_load_resizes_when_asked(tmp_path):
    _, bins, same = _pairs()
    write_bin(tmp_path / "v.bin", bins, same)
    images, _ = load_bin(tmp_path / "v.bin", image_size=4)
    assert images.shape == (4, 4, 4, 3)


def _short_binstring(b: bytes) -> bytes:
    return b"U" + struct.pack("<B", len(b)) + b


def test_python2_pickle_with_str_images(tmp_path):
    arrs, bins, _ = _pairs()
    # hand-assembled protocol-2 pickle as Python 2 writes ([str, ...], [True, False])
    body = b"\x80\x02]q\x00(" + b"".join(
        (b"T" + struct.pack("<I", len(b)) + b) if len(b) > 255 else _short_binstring(b) for b in bins
    ) + b"e]q\x01(\x88\x89e\x86q\x02."
    (tmp_path / "py2.bin").write_bytes(body)
    images, issame = load_bin(tmp_path / "py2.bin")
    assert np.array_equal(images, np.stack(arrs)) and issame.tolist() == [True, False]


def test_numpy_uint8_buffers_and_protocol2_bytes(tmp_path):
    arrs, bins, same = _pairs()
    np_bins = [np.frombuffer(b, np.uint8) for b in bins]
    for proto in (2, 4, 5):
        (tmp_path / "n.bin").write_bytes(pickle.dumps((np_bins, same), protocol=proto))
        images, issame = load_bin(tmp_path / "n.bin")
        assert np.array_equal(images, np.stack(arrs)) and issame.tolist() == same
        (tmp_path / "b.bin").write_bytes(pickle.dumps((bins, same), protocol=proto))  # _codecs.encode at 2
        assert load_bin_raw(tmp_path / "b.bin")[0] == bins


def test_malicious_reduce_is_refused_and_runs_nothing(tmp_path):
    _, bins, same = _pairs()
    (tmp_path / "evil.bin").write_bytes(pickle.dumps(([Evil()] + bins[1:], same), protocol=2))
    CALLED.clear()
    with pytest.raises(DataError, match=r"evil\.bin: refused to load: the pickle asks for global "
                                        r"'.*test_verification_bin\._mark_called'"):
        load_bin(tmp_path / "evil.bin")
    assert CALLED == []


def test_os_system_and_object_arrays_are_refused(tmp_path):
    payload = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    (tmp_path / "sys.bin").write_bytes(payload)
    with pytest.raises(DataError, match=r"global 'os\.system'"):
        load_bin_raw(tmp_path / "sys.bin")
    obj = np.array([b"a", b"b"], dtype=object)
    (tmp_path / "obj.bin").write_bytes(pickle.dumps(([obj], [True])))
    with pytest.raises(DataError, match=r"obj\.bin: refused to load: .*dtype"):
        load_bin_raw(tmp_path / "obj.bin")


def test_bad_structure_messages(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"x\.bin: not a readable verification \.bin"):
        load_bin_raw(tmp_path / "x.bin")
    (tmp_path / "c.bin").write_bytes(pickle.dumps(([b"a", b"b", b"c"], [True])))
    with pytest.raises(DataError, match=r"3 images for 1 pairs"):
        load_bin_raw(tmp_path / "c.bin")
    (tmp_path / "d.bin").write_bytes(pickle.dumps(([b"a", b"b"], [True])))
    with pytest.raises(DataError, match=r"d\.bin: image 0: not a decodable image"):
        load_bin(tmp_path / "d.bin")
    with pytest.raises(DataError, match="not found"):
        load_bin(tmp_path / "missing.bin")
