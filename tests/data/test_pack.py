"""InsightFace and im2rec packs: layout, labels, bytes, bad input."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from facebone.errors import DataError
from facebone.data.pack import open_pack, write_im2rec_pack, write_insightface_pack
from facebone.data.recordio import IRHeader, RecordReader, pack, read_index, unpack


def test_insightface_layout_matches_recbuilder(tmp_path, images):
    samples, _ = images
    info = write_insightface_pack(tmp_path, samples, image_size=(12, 10))
    assert info == {"images": 12, "num_classes": 4, "identities": 4}
    keys, offsets = read_index(tmp_path / "train.idx")
    # images 1..12, identity records 13..16, header record (key 0) written last
    assert keys.tolist() == list(range(1, 17)) + [0]
    r = RecordReader(tmp_path / "train.rec")
    h0, p0 = unpack(r.read_at(offsets[-1]))
    assert (h0.flag, h0.label.tolist(), h0.id, h0.id2, p0) == (2, [13.0, 17.0], 0, 1, b"")
    h13, p13 = unpack(r.read_at(offsets[12]))
    assert (h13.label.tolist(), h13.id, p13) == ([1.0, 4.0], 13, b"")
    h1, p1 = unpack(r.read_at(offsets[0]))
    assert (h1.flag, h1.label, h1.id, h1.id2, p1) == (0, 0.0, 1, 0, samples[0][0])
    assert (tmp_path / "property").read_text() == "4,12,10\n"
    # the stream is exactly the framed records in this order
    expected = b"".join(_framed(pack(IRHeader(0, lab, k + 1, 0), img)) for k, (img, lab) in enumerate(samples))
    assert (tmp_path / "train.rec").read_bytes().startswith(expected)


def _framed(payload: bytes) -> bytes:
    from facebone.data.recordio import frame

    return frame(payload)


def test_open_insightface_pack_skips_header_and_identity_records(tmp_path, images):
    samples, _ = images
    write_insightface_pack(tmp_path, samples, image_size=(12, 10))
    p = open_pack(tmp_path)
    assert p.layout == "insightface" and len(p) == 12 and p.num_classes == 4
    assert p.labels.dtype == np.int64 and p.labels.tolist() == [s[1] for s in samples]
    assert [p.image_bytes(i) for i in range(12)] == [s[0] for s in samples]
    assert p.image_size == (12, 10)
    assert open_pack(tmp_path / "train.rec").labels.tolist() == p.labels.tolist()


def test_im2rec_layout_every_key_is_an_image(tmp_path, images):
    samples, _ = images
    write_im2rec_pack(tmp_path, samples[::-1])
    p = open_pack(tmp_path)
    assert p.layout == "im2rec" and len(p) == 12
    assert p.labels.tolist() == [s[1] for s in samples[::-1]]
    assert p.image_bytes(0) == samples[-1][0]
    assert p.image_size == (12, 10)  # no property file: read from the first image


def test_multi_label_im2rec_uses_first_label(tmp_path, images):
    from facebone.data.recordio import IndexedRecordWriter

    samples, _ = images
    with IndexedRecordWriter(tmp_path / "train.rec") as w:
        for k, (img, lab) in enumerate(samples[:3]):
            w.write_idx(k, pack(IRHeader(0, [lab + 2, 7.0], k, 0), img))
    p = open_pack(tmp_path)
    assert p.layout == "im2rec" and p.labels.tolist() == [2, 2, 2]


def test_unsorted_labels_are_refused(tmp_path, images):
    samples, _ = images
    with pytest.raises(DataError, match="sorted by label"):
        write_insightface_pack(tmp_path, [samples[5], samples[0]], image_size=12)


def test_index_past_end_names_key_and_offset(tmp_path, images):
    samples, _ = images
    write_im2rec_pack(tmp_path, samples)
    idx = tmp_path / "train.idx"
    lines = idx.read_text().splitlines()
    lines[4] = "4\t999999"
    idx.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train\.rec: record key 4 at byte offset 999999: offset 999999 is past the end"):
        open_pack(tmp_path)
    p = open_pack(tmp_path, skip_corrupt=True)
    assert len(p) == 11 and len(p.corrupt) == 1 and 4 not in p.keys.tolist()


def test_truncated_rec_and_missing_idx(tmp_path, images):
    samples, _ = images
    write_im2rec_pack(tmp_path, samples)
    rec = tmp_path / "train.rec"
    rec.write_bytes(rec.read_bytes()[:-50])
    with pytest.raises(DataError, match=r"record key 11 at byte offset \d+: truncated"):
        p = open_pack(tmp_path)
        p.image_bytes(11)
    (tmp_path / "train.idx").unlink()
    with pytest.raises(DataError, match=r"train\.idx: index file missing"):
        open_pack(tmp_path)


def test_wrong_magic_in_pack(tmp_path, images):
    samples, _ = images
    write_im2rec_pack(tmp_path, samples)
    _, offsets = read_index(tmp_path / "train.idx")
    data = bytearray((tmp_path / "train.rec").read_bytes())
    data[offsets[3]:offsets[3] + 4] = b"\0\0\0\0"
    (tmp_path / "train.rec").write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"record key 3 at byte offset {offsets[3]}: wrong magic 0x00000000"):
        open_pack(tmp_path)


def test_bad_header_range(tmp_path, images):
    from facebone.data.recordio import IndexedRecordWriter

    samples, _ = images
    with IndexedRecordWriter(tmp_path / "train.rec") as w:
        w.write_idx(1, pack(IRHeader(0, 0, 1, 0), samples[0][0]))
        w.write_idx(0, pack(IRHeader(0, [5, 6], 0, 1), b""))
    with pytest.raises(DataError, match="image key 2 .* is not in the index"):
        open_pack(tmp_path)
