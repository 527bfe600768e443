"""facebone against packs written by mxnet 1.9.1 (fixtures in ``fixtures/mxnet/``).

The fixtures and ``manifest.json`` were made by ``fixtures/make_mxnet_fixtures.py`` with
mxnet's own writer and reader; these tests need no mxnet. They check that facebone reads
every record exactly (keys, offsets, header fields, labels, payload bytes), never takes a
header or identity record for an image, and that facebone's writer, fed the same records
in the same order, produces byte-identical ``.rec`` and ``.idx`` files. The last tests
cross-check against a live mxnet and are skipped when it is not installed.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from facebone.data import open_pack
from facebone.data.pack import write_insightface_pack
from facebone.data.recordio import (
    IndexedRecordWriter, IRHeader, RecordReader, frame, pack, read_index, unpack,
)

FIXTURES = Path(__file__).parent / "fixtures" / "mxnet"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
PACKS = MANIFEST["packs"]
IMAGE_PACKS = [name for name, p in PACKS.items() if p["layout"] is not None]
MAGIC = bytes.fromhex("0a23d7ce")


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def records_of(name: str) -> list[bytes]:
    """Every record of a fixture, read by facebone, checked against mxnet's sha256."""
    d = FIXTURES / name
    r = RecordReader(d / "train.rec")
    keys, offsets = read_index(d / "train.idx")
    out = []
    for k, off, e in zip(keys.tolist(), offsets.tolist(), PACKS[name]["records"]):
        rec = r.read_at(off, key=k)
        assert (k, off, len(rec), sha(rec)) == (e["key"], e["offset"], e["record_len"], e["record_sha256"]), (name, e)
        out.append(rec)
    r.close()
    return out


def header_tuple(h: IRHeader) -> tuple:
    label = [float(x) for x in h.label] if h.flag > 0 else float(h.label)
    return (h.flag, label, h.id, h.id2)


def test_fixtures_are_intact_and_small():
    total = 0
    for name, p in PACKS.items():
        for fname, info in p["files"].items():
            data = (FIXTURES / name / fname).read_bytes()
            assert (len(data), sha(data)) == (info["size"], info["sha256"]), f"{name}/{fname} changed"
            total += len(data)
    assert total + (FIXTURES / "manifest.json").stat().st_size < 100_000
    assert MANIFEST["mxnet"].startswith("1.9")


def test_fixtures_exercise_the_hard_cases():
    """The fixtures really hold split records, multi-label headers and a header record."""
    def split_words(name):
        rec = (FIXTURES / name / "train.rec").read_bytes()
        words = np.frombuffer(rec[: len(rec) // 4 * 4], dtype="<u4")
        # a part header is a magic word followed by a length word; count parts with cflag != 0
        return int(np.sum((words[:-1] == 0xCED7230A) & ((words[1:] >> 29) != 0)))

    assert split_words("magic") >= 8 and split_words("raw") >= 8
    flags = {e["flag"] for e in PACKS["im2rec_multilabel"]["records"]}
    assert {0, 1, 2, 3} <= flags
    for name in ("magic", "raw"):
        assert all(MAGIC in r for r in records_of(name)[1:6])


@pytest.mark.parametrize("name", list(PACKS))
def test_index_and_records_read_exactly(name):
    d = FIXTURES / name
    keys, offsets = read_index(d / "train.idx")
    assert keys.tolist() == [e["key"] for e in PACKS[name]["records"]]
    assert offsets.tolist() == [e["offset"] for e in PACKS[name]["records"]]
    records_of(name)  # keys, offsets, lengths and sha256 of every record
    # sequential scan finds the same records at the same offsets
    r = RecordReader(d / "train.rec")
    assert sorted((off, sha(rec)) for off, rec in r.scan()) == sorted(
        (e["offset"], e["record_sha256"]) for e in PACKS[name]["records"])


@pytest.mark.parametrize("name", IMAGE_PACKS)
def test_headers_labels_and_payloads_match_mxnet_unpack(name):
    for rec, e in zip(records_of(name), PACKS[name]["records"]):
        h, payload = unpack(rec)
        assert header_tuple(h) == (e["flag"], e["label"], e["id"], e["id2"]), e
        if h.flag > 0:
            assert h.label.dtype == np.float32 and h.label.shape == (h.flag,)
        assert (len(payload), sha(payload)) == (e["payload_len"], e["payload_sha256"]), e
        # facebone's pack() rebuilds the identical record from the header fields
        assert pack(IRHeader(0, e["label"], e["id"], e["id2"]), payload) == rec


@pytest.mark.parametrize("name", IMAGE_PACKS)
def test_open_pack_reads_only_images_exactly(name):
    p = open_pack(FIXTURES / name)
    info = PACKS[name]
    assert p.layout == info["layout"]
    by_key = {e["key"]: e for e in info["records"]}
    assert p.keys.tolist() == info["image_keys"]
    expected_labels = [(by_key[k]["label"][0] if by_key[k]["flag"] > 0 else by_key[k]["label"]) for k in info["image_keys"]]
    assert p.labels.tolist() == expected_labels
    for i, k in enumerate(info["image_keys"]):
        e = by_key[k]
        assert sha(p.image_bytes(i)) == e["payload_sha256"]
        h, payload = p.record(i)
        assert header_tuple(h) == (e["flag"], e["label"], e["id"], e["id2"])
        assert sha(payload) == e["payload_sha256"]
        assert payload, "an image record with an empty payload (a header or identity record?)"
    if info["layout"] == "insightface":
        # neither the header record (key 0) nor the identity records are images
        ids = [e["key"] for e in info["records"] if e["key"] not in info["image_keys"]]
        assert 0 in ids and len(ids) == 1 + p.num_classes
        assert not set(ids) & set(p.keys.tolist())
        assert header_tuple(p.header)[:2] == (2, by_key[0]["label"])
        assert p.num_classes == 3 and p.image_size == (8, 8)
    p.close()


@pytest.mark.parametrize("name", list(PACKS))
def test_writer_is_byte_identical_to_mxnet(name, tmp_path):
    """Same records, same order -> the same .rec and .idx bytes as MXIndexedRecordIO."""
    keys = [e["key"] for e in PACKS[name]["records"]]
    with IndexedRecordWriter(tmp_path / "train.rec", tmp_path / "train.idx") as w:
        for k, rec in zip(keys, records_of(name)):
            w.write_idx(k, rec)
    for fname in ("train.rec", "train.idx"):
        assert (tmp_path / fname).read_bytes() == (FIXTURES / name / fname).read_bytes(), fname


@pytest.mark.parametrize("name", list(PACKS))
def test_frame_of_each_record_is_its_bytes_in_the_file(name):
    data = (FIXTURES / name / "train.rec").read_bytes()
    ends = sorted([e["offset"] for e in PACKS[name]["records"]] + [len(data)])
    for rec, e in zip(records_of(name), PACKS[name]["records"]):
        nxt = ends[ends.index(e["offset"]) + 1]
        assert frame(rec) == data[e["offset"]:nxt]


def test_write_insightface_pack_matches_mxnet_recbuilder_layout(tmp_path):
    """facebone's InsightFace pack writer, given the fixture's images and labels, writes
    the mxnet-made ``insightface`` pack (images, identities, header last) byte for byte."""
    p = open_pack(FIXTURES / "insightface")
    samples = [(p.image_bytes(i), int(p.labels[i])) for i in range(len(p))]
    p.close()
    info = write_insightface_pack(tmp_path, samples, image_size=(8, 8))
    assert info == {"images": 6, "num_classes": 3, "identities": 3}
    for fname in ("train.rec", "train.idx", "property"):
        assert (tmp_path / fname).read_bytes() == (FIXTURES / "insightface" / fname).read_bytes(), fname


def test_header_first_pack_reads_like_header_last():
    a, b = open_pack(FIXTURES / "insightface"), open_pack(FIXTURES / "insightface_header_first")
    assert a.keys.tolist() == b.keys.tolist() and a.labels.tolist() == b.labels.tolist()
    assert [a.image_bytes(i) for i in range(len(a))] == [b.image_bytes(i) for i in range(len(b))]
    a.close()
    b.close()


# -- live cross-checks (need mxnet; skipped without it) -------------------------------

@pytest.mark.mxnet
@pytest.mark.parametrize("name", list(PACKS))
def test_live_mxnet_reads_what_facebone_reads(name):
    mx = pytest.importorskip("mxnet")
    d = FIXTURES / name
    r = mx.recordio.MXIndexedRecordIO(str(d / "train.idx"), str(d / "train.rec"), "r")
    assert list(r.keys) == [e["key"] for e in PACKS[name]["records"]]
    for key, rec in zip(r.keys, records_of(name)):
        assert r.read_idx(key) == rec
    r.close()


@pytest.mark.mxnet
def test_live_mxnet_writes_what_facebone_writes(tmp_path):
    mx = pytest.importorskip("mxnet")
    recs: list[tuple[int, bytes]] = []
    for name in PACKS:
        for rec in records_of(name):
            recs.append((len(recs), rec))
    rng = np.random.default_rng(0)
    for n in range(40):  # random payloads sprinkled with the magic at random positions
        b = bytearray(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes())
        for _ in range(int(rng.integers(0, 4))):
            pos = int(rng.integers(0, len(b) + 1))
            b[pos:pos] = MAGIC
        flag = int(rng.integers(0, 4))
        label = float(n) if flag == 0 else [float(n)] + rng.random(flag - 1).astype(np.float32).tolist()
        recs.append((len(recs), mx.recordio.pack(mx.recordio.IRHeader(0, label, n, 0), bytes(b))))
        assert recs[-1][1] == pack(IRHeader(0, label, n, 0), bytes(b))
    w = mx.recordio.MXIndexedRecordIO(str(tmp_path / "m.idx"), str(tmp_path / "m.rec"), "w")
    for k, rec in recs:
        w.write_idx(k, rec)
    w.close()
    with IndexedRecordWriter(tmp_path / "f.rec", tmp_path / "f.idx") as fw:
        for k, rec in recs:
            fw.write_idx(k, rec)
    assert (tmp_path / "f.rec").read_bytes() == (tmp_path / "m.rec").read_bytes()
    assert (tmp_path / "f.idx").read_bytes() == (tmp_path / "m.idx").read_bytes()
    fr = RecordReader(tmp_path / "m.rec")
    keys, offsets = read_index(tmp_path / "m.idx")
    for (k, rec), off in zip(recs, offsets.tolist()):
        assert fr.read_at(off, key=k) == rec
