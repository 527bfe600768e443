"""RecordIO framing, IRHeader packing and the indexed reader/writer."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from facebone.errors import DataError
from facebone.data.recordio import (
    IndexedRecordWriter, IRHeader, RecordReader, frame, pack, read_index, unpack,
)

M = bytes.fromhex("0a23d7ce")  # 0xCED7230A little-endian


def word(cflag: int, length: int) -> bytes:
    return M + struct.pack("<I", (cflag << 29) | length)


def test_frame_plain_record_is_magic_length_payload_padding():
    assert frame(b"abcde") == word(0, 5) + b"abcde" + b"\0\0\0"
    assert frame(b"abcd") == word(0, 4) + b"abcd"
    assert frame(b"") == word(0, 0)


def test_frame_splits_at_aligned_magic_exactly_like_dmlc():
    payload = b"AAAA" + M + b"BBBBBBBB" + M + b"CC"
    expected = (word(1, 4) + b"AAAA"          # first part, magic dropped
                + word(2, 8) + b"BBBBBBBB"    # middle part
                + word(3, 2) + b"CC" + b"\0\0")  # last part, padded by the whole length
    assert frame(payload) == expected


def test_frame_magic_at_start_and_end_and_unaligned():
    assert frame(M + b"xy") == word(1, 0) + word(3, 2) + b"xy\0\0"
    assert frame(b"xyzw" + M) == word(1, 4) + b"xyzw" + word(3, 0)
    unaligned = b"x" + M + b"yyy"  # magic at offset 1: not split
    assert frame(unaligned) == word(0, 8) + unaligned


@pytest.mark.parametrize("payload", [b"", b"a", M, M + M, b"ab" + M + b"cd", b"abcd" + M * 3 + b"e", bytes(range(256)) * 3])
def test_write_read_round_trip(tmp_path, payload):
    w = IndexedRecordWriter(tmp_path / "x.rec")
    with w:
        w.write_idx(7, b"first")
        off = w.write_idx(3, payload)
    keys, offsets = read_index(tmp_path / "x.idx")
    assert keys.tolist() == [7, 3] and offsets[1] == off
    r = RecordReader(tmp_path / "x.rec")
    assert r.read_at(offsets[0]) == b"first"
    assert r.read_at(offsets[1]) == payload
    assert [rec for _, rec in r.scan()] == [b"first", payload]
    assert (tmp_path / "x.idx").read_text() == f"7\t0\n3\t{off}\n"


def test_pack_unpack_single_and_multi_label():
    s = pack(IRHeader(0, 3.0, 11, 0), b"IMG")
    assert s == struct.pack("<IfQQ", 0, 3.0, 11, 0) + b"IMG"
    h, img = unpack(s)
    assert (h.flag, h.label, h.id, h.id2, img) == (0, 3.0, 11, 0, b"IMG")
    s = pack(IRHeader(9, [1.5, 2.0, -3.0], 5, 6), b"J")  # flag is recomputed as mxnet does
    assert s == struct.pack("<IfQQ", 3, 0.0, 5, 6) + np.array([1.5, 2, -3], "<f4").tobytes() + b"J"
    h, img = unpack(s)
    assert h.flag == 3 and h.label.tolist() == [1.5, 2.0, -3.0] and img == b"J"


def test_unpack_too_short_and_label_overflow():
    with pytest.raises(DataError, match="too short"):
        unpack(b"abc", where="f.rec: record key 4")
    with pytest.raises(DataError, match="5 labels"):
        unpack(struct.pack("<IfQQ", 5, 0, 0, 0) + b"\0" * 8)


def _one(tmp_path, payload=b"hello world!"):
    with IndexedRecordWriter(tmp_path / "t.rec") as w:
        w.write_idx(0, payload)
        w.write_idx(1, payload)
    return tmp_path / "t.rec"


def test_wrong_magic_names_file_key_offset(tmp_path):
    rec = _one(tmp_path)
    data = bytearray(rec.read_bytes())
    data[20:24] = b"XXXX"  # second record starts at 20
    rec.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"t\.rec: record key 1 at byte offset 20: wrong magic"):
        RecordReader(rec).read_at(20, key=1)


def test_truncated_and_past_end(tmp_path):
    rec = _one(tmp_path)
    rec.write_bytes(rec.read_bytes()[:30])
    r = RecordReader(rec)
    with pytest.raises(DataError, match=r"key 1 at byte offset 20: truncated"):
        r.read_at(20, key=1)
    with pytest.raises(DataError, match=r"key 9 at byte offset 400: offset 400 is past the end of the file \(30 bytes\)"):
        r.read_at(400, key=9)


def test_missing_and_malformed_index(tmp_path):
    with pytest.raises(DataError, match=r"nope\.idx: index file missing"):
        read_index(tmp_path / "nope.idx")
    (tmp_path / "bad.idx").write_text("0\t0\n1\tzz\n")
    with pytest.raises(DataError, match=r"bad\.idx: line 2"):
        read_index(tmp_path / "bad.idx")


def test_reader_reopens_after_fork(tmp_path):
    import os

    rec = _one(tmp_path)
    r = RecordReader(rec)
    assert r.read_at(0) == b"hello world!"
    r._pid = os.getpid() + 1  # pretend we are in a forked child: must reopen, not reuse
    old = r._mm
    assert r.read_at(20) == b"hello world!" and r._mm is not old


@pytest.mark.mxnet
def test_matches_mxnet_byte_for_byte(tmp_path):
    mx = pytest.importorskip("mxnet")
    records = [(0, b"x" * 7), (1, b"AAAA" + M + b"BB"), (2, M * 2)]
    w = mx.recordio.MXIndexedRecordIO(str(tmp_path / "m.idx"), str(tmp_path / "m.rec"), "w")
    for k, p in records:
        w.write_idx(k, mx.recordio.pack(mx.recordio.IRHeader(0, float(k), k, 0), p))
    w.close()
    with IndexedRecordWriter(tmp_path / "f.rec") as fw:
        for k, p in records:
            fw.write_idx(k, pack(IRHeader(0, float(k), k, 0), p))
    assert (tmp_path / "f.rec").read_bytes() == (tmp_path / "m.rec").read_bytes()
    assert (tmp_path / "f.idx").read_bytes() == (tmp_path / "m.idx").read_bytes()
