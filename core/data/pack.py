"""Face-recognition RecordIO packs (``train.rec``, ``train.idx``, ``property``).

Two layouts are read:

- ``insightface``: record 0 is a header with no image (``flag >= 2``; ``label[0]`` is the
  key of the first identity record, ``label[1]`` the end key), image keys are
  ``1 .. label[0]-1`` and identity records (``label = (first image key, end key)``) follow.
  This is what InsightFace's ``RecBuilder`` writes and ``MXFaceDataset`` reads.
- ``im2rec``: no header record; every key in the index is an image.

``property`` is the text ``num_classes,H,W``.
"""
from __future__ import annotations

import os
import struct
from itertools import groupby
from pathlib import Path
from typing import Iterable

import numpy as np

from facebone.errors import DataError
from facebone.data.labels import check_class_count
from facebone.data.recordio import (
    MAGIC,
    MAX_RECORD,
    IR_SIZE,
    IndexedRecordWriter,
    IRHeader,
    RecordReader,
    pack,
    read_index,
    unpack,
)


def resolve_pack_paths(path: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(rec, idx, property) for a pack directory or a ``.rec`` file path."""
    path = Path(path)
    if path.is_dir():
        recs = sorted(path.glob("*.rec"))
        rec = path / "train.rec" if (path / "train.rec").exists() else (recs[0] if len(recs) == 1 else None)
        if rec is None:
            what = "no .rec file" if not recs else f"several .rec files ({', '.join(r.name for r in recs)}) and no train.rec"
            raise DataError(f"{path}: {what}")
    else:
        rec = path
        if not rec.exists():
            raise DataError(f"{rec}: file not found")
    return rec, rec.with_suffix(".idx"), rec.parent / "property"


def read_property(path: Path) -> tuple[int, tuple[int, int]] | None:
    """(num_classes, (H, W)) from a ``property`` file, or None if there is none."""
    if not path.is_file():
        return None
    first = path.read_text(errors="replace").strip().splitlines()[:1]
    try:
        c, h, w = (int(x) for x in first[0].split(","))
    except (ValueError, IndexError):
        raise DataError(f"{path}: expected 'num_classes,H,W' on the first line, got {first[:1]!r}") from None
    return c, (h, w)


_FLAG = struct.Struct("<I")


class Pack:
    """A RecordIO face pack, opened for random access (see :func:`open_pack`)."""

    def __init__(self, rec: Path, idx: Path, prop: Path, *, skip_corrupt: bool = False):
        self.rec_path, self.idx_path, self.property_path = rec, idx, prop
        self.reader = RecordReader(rec)
        all_keys, all_offsets = read_index(idx)
        if not len(all_keys):
            raise DataError(f"{idx}: index is empty (no records)")
        order = np.argsort(all_keys, kind="stable")
        self._sorted_keys, self._sorted_offsets = all_keys[order], all_offsets[order]
        self.header: IRHeader | None = None
        self.layout = "im2rec"
        keys = all_keys
        i0 = int(np.searchsorted(self._sorted_keys, 0))
        if i0 < len(self._sorted_keys) and self._sorted_keys[i0] == 0:
            header, payload = unpack(self.reader.read_at(self.offset_of(0), key=0), where=f"{rec}: record key 0")
            if header.flag >= 2 and not payload:
                first_id, end = int(header.label[0]), int(header.label[1])
                if not (1 <= first_id <= end):
                    raise DataError(f"{rec}: header record key 0 has label ({first_id}, {end}); expected "
                                    "(first identity key, end key) with 1 <= first <= end")
                self.layout, self.header = "insightface", header
                keys = np.arange(1, first_id, dtype=np.int64)
        self.keys = keys
        self.offsets = self._offsets_for(keys)
        self.corrupt: list[str] = []
        self.labels = self._read_labels(skip_corrupt)
        prop_info = read_property(prop)
        self._image_size = prop_info[1] if prop_info else None
        self._probed_size: tuple[int, int] | None = None
        self.notes: list[str] = []
        max_label = int(self.labels.max()) if len(self.labels) else -1
        self.num_classes = prop_info[0] if prop_info else max_label + 1
        if max_label >= self.num_classes:
            raise DataError(f"{prop}: num_classes is {self.num_classes} but {rec} has label {max_label}")
        if not len(self.keys):
            raise DataError(f"{rec}: the pack holds no images")
        check_class_count(self.labels, self.num_classes, where=self.where, declared_by=str(prop) if prop_info else None)

    # -- lookups ---------------------------------------------------------------------
    def offset_of(self, key: int) -> int:
        i = int(np.searchsorted(self._sorted_keys, key))
        if i >= len(self._sorted_keys) or self._sorted_keys[i] != key:
            raise DataError(f"{self.idx_path}: key {key} is not in the index")
        return int(self._sorted_offsets[i])

    def _offsets_for(self, keys: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._sorted_keys, keys)
        pos_c = np.minimum(pos, len(self._sorted_keys) - 1)
        missing = self._sorted_keys[pos_c] != keys
        if missing.any():
            k = int(keys[np.flatnonzero(missing)[0]])
            raise DataError(f"{self.idx_path}: image key {k} (from the header record of {self.rec_path.name}) "
                            f"is not in the index ({int(missing.sum())} keys missing)")
        return self._sorted_offsets[pos_c]

    def _read_labels(self, skip_corrupt: bool) -> np.ndarray:
        magic, lrec, flag, label = self.reader.header_fields(self.offsets)
        length = lrec & MAX_RECORD
        fast = (magic == MAGIC) & ((lrec >> 29) == 0) & (length >= IR_SIZE + 4 * np.minimum(flag, 1))
        labels = label.astype(np.float64)
        good = np.ones(len(self.keys), bool)
        for i in np.flatnonzero(~fast).tolist():  # rare: split headers, tiny records, or errors
            key, off = int(self.keys[i]), int(self.offsets[i])
            try:
                header, _ = unpack(self.reader.read_at(off, key=key), where=f"{self.rec_path}: record key {key} at byte offset {off}")
                labels[i] = header.label[0] if header.flag > 0 else header.label
            except DataError as exc:
                if not skip_corrupt:
                    raise
                self.corrupt.append(str(exc))
                good[i] = False
        bad = good & ((labels < 0) | (labels != np.floor(labels)) | ~np.isfinite(labels))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            msg = (f"{self.rec_path}: record key {int(self.keys[i])} at byte offset {int(self.offsets[i])}: "
                   f"label {labels[i]!r} is not a class index (non-negative integer)")
            if not skip_corrupt:
                raise DataError(msg)
            self.corrupt.extend([msg] * int(bad.sum()))
            good &= ~bad
        if not good.all():
            self.keys, self.offsets, labels = self.keys[good], self.offsets[good], labels[good]
        return labels.astype(np.int64)

    # -- public API ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.keys)

    def record(self, i: int) -> tuple[IRHeader, bytes]:
        """Header and encoded image of image ``i`` (0-based position, not key)."""
        key, off = int(self.keys[i]), int(self.offsets[i])
        return unpack(self.reader.read_at(off, key=key), where=f"{self.rec_path}: record key {key} at byte offset {off}")

    def image_bytes(self, i: int) -> bytes:
        """Encoded image bytes of image ``i``."""
        rec = self.reader.read_at(int(self.offsets[i]), key=int(self.keys[i]))
        if len(rec) >= IR_SIZE:
            flag = _FLAG.unpack_from(rec, 0)[0]
            if len(rec) >= IR_SIZE + 4 * flag:
                return rec[IR_SIZE + 4 * flag:]
        return self.record(i)[1]  # reports the problem

    def where(self, i: int) -> str:
        """'FILE: record key K at byte offset O' for messages."""
        return f"{self.rec_path}: record key {int(self.keys[i])} at byte offset {int(self.offsets[i])}"

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the first image (its header). When ``property`` says otherwise, :attr:`notes` says so."""
        if self._probed_size is None:
            from facebone.data.decode import probe_size

            self._probed_size = probe_size(self.image_bytes(0), self.where(0))
            if self._image_size is not None and self._image_size != self._probed_size:
                (h, w), (ph, pw) = self._probed_size, self._image_size
                self.notes.append(f"{self.property_path}: says {ph}x{pw} pixels but the images are {h}x{w} "
                                  f"(first image, {self.where(0)}); using {h}x{w}")
        return self._probed_size

    @property
    def property_size(self) -> tuple[int, int] | None:
        """(H, W) that ``property`` declares, or None."""
        return self._image_size

    @property
    def path(self) -> Path:
        return self.rec_path.parent

    def close(self) -> None:
        self.reader.close()

    def __repr__(self) -> str:
        return (f"Pack({str(self.rec_path)!r}, layout={self.layout!r}, images={len(self)}, "
                f"num_classes={self.num_classes})")


def open_pack(path: str | os.PathLike, *, skip_corrupt: bool = False) -> Pack:
    """Open a RecordIO pack: a directory holding ``train.rec``/``train.idx`` (and
    ``property``), or the path of a ``.rec`` file with its ``.idx`` beside it."""
    rec, idx, prop = resolve_pack_paths(path)
    return Pack(rec, idx, prop, skip_corrupt=skip_corrupt)


def _size_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    return (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))


def write_insightface_pack(out_dir: str | os.PathLike, samples: Iterable[tuple[bytes, int]], *,
                           image_size: int | tuple[int, int], prefix: str = "train") -> dict:
    """Write ``samples`` ((encoded image, label), sorted by label) as InsightFace does.

    The byte stream equals that of InsightFace's ``RecBuilder`` (mxnet
    ``MXIndexedRecordIO`` + ``recordio.pack``) for the same images: images at keys
    1..N, then one identity record per label, then the header record (key 0) last.
    Returns {'images', 'num_classes', 'identities'}.
    """
    out_dir = Path(out_dir)
    h, w = _size_hw(image_size)
    writer = IndexedRecordWriter(out_dir / f"{prefix}.rec", out_dir / f"{prefix}.idx")
    with writer:
        widx, last = 1, -1
        identities: list[tuple[int, int]] = []
        for label, group in groupby(samples, key=lambda s: int(s[1])):
            if label <= last or label < 0:
                raise DataError(f"{out_dir}: samples must be sorted by label (non-negative); "
                                f"label {label} came after {last}")
            start = widx
            for image, _ in group:
                writer.write_idx(widx, pack(IRHeader(0, label, widx, 0), image))
                widx += 1
            identities.append((start, widx))
            last = label
        if not identities:
            raise DataError(f"{out_dir}: no samples to write")
        first_id = widx
        for start, end in identities:
            writer.write_idx(widx, pack(IRHeader(0, [start, end], widx, 0), b""))
            widx += 1
        writer.write_idx(0, pack(IRHeader(0, [first_id, widx], 0, 1), b""))
    from facebone.io import atomic_write_text

    atomic_write_text(out_dir / "property", f"{last + 1},{h},{w}\n")
    return {"images": first_id - 1, "num_classes": last + 1, "identities": len(identities)}


def write_im2rec_pack(out_dir: str | os.PathLike, samples: Iterable[tuple[bytes, int]], *,
                      image_size: int | tuple[int, int] | None = None, prefix: str = "train") -> dict:
    """Write ``samples`` in im2rec's layout: keys 0..N-1, every record an image
    (``IRHeader(0, label, key, 0)``). ``property`` is written when ``image_size`` is given."""
    out_dir = Path(out_dir)
    max_label = -1
    n = 0
    with IndexedRecordWriter(out_dir / f"{prefix}.rec", out_dir / f"{prefix}.idx") as writer:
        for image, label in samples:
            label = int(label)
            writer.write_idx(n, pack(IRHeader(0, label, n, 0), image))
            max_label = max(max_label, label)
            n += 1
    if image_size is not None:
        from facebone.io import atomic_write_text

        h, w = _size_hw(image_size)
        atomic_write_text(out_dir / "property", f"{max_label + 1},{h},{w}\n")
    return {"images": n, "num_classes": max_label + 1}
