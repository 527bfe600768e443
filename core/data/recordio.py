"""MXNet RecordIO, read and written natively (no mxnet).

Framing (dmlc-core ``RecordIOWriter``): every part starts with the magic word
``0xCED7230A`` and a length word ``(cflag << 29) | length`` (both little-endian uint32),
followed by ``length`` bytes and zero padding to a multiple of 4. A payload that holds
the magic at a 4-byte-aligned position is cut there (the magic itself is dropped) and
written as parts with ``cflag`` 1 (first), 2 (middle) and 3 (last); ``cflag`` 0 marks a
whole record. The ``.idx`` file is text, one ``key<TAB>offset`` line per record.

Image records (mxnet ``recordio.pack``): a 24-byte ``IRHeader`` ``<IfQQ`` (flag, label,
id, id2); when ``flag > 0``, ``flag`` float32 labels follow and ``label`` is 0; then the
encoded image.
"""
from __future__ import annotations

import mmap
import numbers
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from facebone.errors import DataError

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)  # 24
MAX_RECORD = (1 << 29) - 1
_LREC = struct.Struct("<II")
_getpid = os.getpid


# -- image header ----------------------------------------------------------------------

@dataclass(frozen=True)
class IRHeader:
    """mxnet's image record header. ``label`` is a float, or a float32 array when ``flag > 0``."""

    flag: int
    label: Any
    id: int
    id2: int


def pack(header: IRHeader | Sequence[Any], payload: bytes) -> bytes:
    """Header + payload exactly as ``mxnet.recordio.pack``: a numeric label gives ``flag = 0``;
    a sequence of labels gives ``flag = len(labels)``, ``label = 0`` and the labels (float32)
    before the payload."""
    flag, label, id_, id2 = (header.flag, header.label, header.id, header.id2) if isinstance(header, IRHeader) else header
    if isinstance(label, numbers.Number):
        return struct.pack(IR_FORMAT, 0, float(label), int(id_), int(id2)) + bytes(payload)
    labels = np.asarray(label, dtype="<f4").reshape(-1)
    return struct.pack(IR_FORMAT, labels.size, 0.0, int(id_), int(id2)) + labels.tobytes() + bytes(payload)


def unpack(record: bytes | memoryview, *, where: str = "record") -> tuple[IRHeader, bytes]:
    """Split a record into its :class:`IRHeader` and payload (as ``mxnet.recordio.unpack``)."""
    if len(record) < IR_SIZE:
        raise DataError(f"{where}: {len(record)} bytes, too short for an image record header ({IR_SIZE} bytes)")
    flag, label, id_, id2 = struct.unpack_from(IR_FORMAT, record, 0)
    rest = IR_SIZE
    if flag > 0:
        end = rest + 4 * flag
        if end > len(record):
            raise DataError(f"{where}: header says {flag} labels but the record has only {len(record)} bytes")
        label = np.frombuffer(bytes(record[rest:end]), dtype="<f4").astype(np.float32)
        rest = end
    return IRHeader(flag, label, id_, id2), bytes(record[rest:])


# -- framing ---------------------------------------------------------------------------

def frame(payload: bytes) -> bytes:
    """The bytes dmlc's ``RecordIOWriter::WriteRecord`` writes for ``payload``."""
    n = len(payload)
    if n > MAX_RECORD:
        raise DataError(f"RecordIO records must be smaller than 2^29 bytes, got {n}")
    hits = _aligned_magic_positions(payload)
    out = bytearray()
    start = 0
    for i in hits:
        out += _LREC.pack(MAGIC, ((1 if start == 0 else 2) << 29) | (i - start))
        out += payload[start:i]
        start = i + 4
    out += _LREC.pack(MAGIC, ((3 if start != 0 else 0) << 29) | (n - start))
    out += payload[start:]
    out += b"\0" * ((-n) % 4)
    return bytes(out)


def _aligned_magic_positions(payload: bytes) -> list[int]:
    n4 = len(payload) // 4
    if n4 == 0 or MAGIC_BYTES not in payload:
        return []
    words = np.frombuffer(payload, dtype="<u4", count=n4)
    return (np.flatnonzero(words == MAGIC) * 4).tolist()


class RecordWriter:
    """Sequential writer (``MXRecordIO(path, 'w')``); ``tell()`` is the next record's offset.

    Output goes to a temporary file renamed over ``path`` by :meth:`close`, so an
    interrupted write never leaves a half-written pack behind.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._fh = open(self._tmp, "wb")
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def write(self, payload: bytes) -> int:
        """Append one record; return its byte offset."""
        pos = self._pos
        data = frame(payload)
        self._fh.write(data)
        self._pos += len(data)
        return pos

    def close(self) -> None:
        if self._fh.closed:
            return
        self._fh.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Discard everything written."""
        if not self._fh.closed:
            self._fh.close()
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class IndexedRecordWriter(RecordWriter):
    """``MXIndexedRecordIO(idx, rec, 'w')``: records plus a ``key\\toffset`` text index, in write order."""

    def __init__(self, rec_path: str | os.PathLike, idx_path: str | os.PathLike | None = None):
        super().__init__(rec_path)
        self.idx_path = Path(idx_path) if idx_path is not None else self.path.with_suffix(".idx")
        self._lines: list[str] = []
        self._keys: set[int] = set()

    def write_idx(self, key: int, payload: bytes) -> int:
        key = int(key)
        if key in self._keys:
            raise DataError(f"{self.path}: key {key} written twice")
        self._keys.add(key)
        pos = self.write(payload)
        self._lines.append(f"{key}\t{pos}\n")
        return pos

    def close(self) -> None:
        if self._fh.closed:
            return
        from facebone.io import atomic_write_text

        super().close()
        atomic_write_text(self.idx_path, "".join(self._lines))


# -- reading ---------------------------------------------------------------------------

def read_index(idx_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(keys, offsets) as int64 arrays, in file order, from a ``.idx`` file."""
    idx_path = Path(idx_path)
    if not idx_path.is_file():
        raise DataError(f"{idx_path}: index file missing (a RecordIO pack needs its .idx next to the .rec)")
    raw = idx_path.read_bytes()
    lines = [line for line in raw.splitlines() if line.strip()]
    tokens = raw.split()
    flat = None
    if len(tokens) == 2 * len(lines):
        try:
            flat = np.array(tokens, dtype=np.int64) if tokens else np.zeros(0, np.int64)
        except ValueError:
            flat = None
    if flat is None:
        for no, line in enumerate(raw.splitlines(), 1):
            parts = line.split()
            if parts and (len(parts) != 2 or not all(p.lstrip(b"-").isdigit() for p in parts)):
                raise DataError(f"{idx_path}: line {no} is {line[:60]!r}, expected 'key<TAB>offset'")
        raise DataError(f"{idx_path}: malformed index")
    pairs = flat.reshape(-1, 2)
    keys, offsets = pairs[:, 0].copy(), pairs[:, 1].copy()
    if offsets.size and offsets.min() < 0:
        bad = int(np.flatnonzero(offsets < 0)[0])
        raise DataError(f"{idx_path}: key {keys[bad]} has negative offset {offsets[bad]}")
    return keys, offsets


class RecordReader:
    """Random access to the records of a ``.rec`` file by byte offset.

    The file is opened (and memory-mapped) lazily in each process, so a reader can be
    handed to DataLoader workers (fork or spawn) and each worker gets its own mapping.
    """

    def __init__(self, rec_path: str | os.PathLike):
        self.path = Path(rec_path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: RecordIO file missing")
        self.size = self.path.stat().st_size
        self._pid: int | None = None
        self._mm: Any = None
        self._fh: Any = None

    # pickling for spawn-started workers: drop the open file
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_pid=None, _mm=None, _fh=None)
        return state

    def _buffer(self) -> Any:
        if self._pid != os.getpid():
            self._fh = open(self.path, "rb")
            self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if self.size else b""
            self._pid = os.getpid()
        return self._mm

    def close(self) -> None:
        if self._pid == os.getpid():
            if isinstance(self._mm, mmap.mmap):
                self._mm.close()
            self._fh.close()
        self._pid = self._mm = self._fh = None

    def read_at(self, offset: int, *, key: Any = None) -> bytes:
        """The record starting at byte ``offset`` (parts joined, magic re-inserted)."""
        buf = self._mm if self._pid == _getpid() else self._buffer()
        pos = int(offset)
        if pos + 8 <= self.size:  # fast path: one whole record
            magic, lrec = _LREC.unpack_from(buf, pos)
            if magic == MAGIC and lrec >> 29 == 0 and pos + 8 + (lrec & MAX_RECORD) <= self.size:
                return buf[pos + 8:pos + 8 + lrec]
        where = f"{self.path}: record" + (f" key {key}" if key is not None else "") + f" at byte offset {offset}"
        parts: list[bytes] = []
        while True:
            if pos + 8 > self.size:
                if pos >= self.size:
                    raise DataError(f"{where}: offset {pos} is past the end of the file ({self.size} bytes)")
                raise DataError(f"{where}: truncated (record header at byte {pos} runs past the end, "
                                f"file has {self.size} bytes)")
            magic, lrec = _LREC.unpack_from(buf, pos)
            if magic != MAGIC:
                raise DataError(f"{where}: wrong magic 0x{magic:08X} at byte {pos} (expected 0x{MAGIC:08X}); "
                                "not a RecordIO record boundary")
            cflag, length = lrec >> 29, lrec & MAX_RECORD
            start = pos + 8
            if start + length > self.size:
                raise DataError(f"{where}: truncated (needs {length} bytes from byte {start}, "
                                f"file has {self.size} bytes)")
            parts.append(buf[start:start + length])
            pos = start + length + ((-length) % 4)
            if cflag in (0, 3):
                break
            if cflag == 1 and len(parts) > 1 or cflag == 2 and len(parts) == 1:
                raise DataError(f"{where}: inconsistent continuation flag {cflag} at byte {pos}")
            parts.append(MAGIC_BYTES)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def scan(self) -> Iterator[tuple[int, bytes]]:
        """Every record in file order, as (offset, record)."""
        pos = 0
        while pos < self.size:
            rec = self.read_at(pos)
            yield pos, rec
            pos = self._next_offset(pos)

    def _next_offset(self, pos: int) -> int:
        buf = self._buffer()
        while True:
            _, lrec = _LREC.unpack_from(buf, pos)
            cflag, length = lrec >> 29, lrec & MAX_RECORD
            pos += 8 + length + ((-length) % 4)
            if cflag in (0, 3):
                return pos

    def header_fields(self, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Vectorised look at many records at once: (magic, lrec, flag, label) arrays.

        ``label`` is the first label of each record (the header label, or the first of the
        ``flag`` labels). Records too short for this (or split at their start) come back
        with ``lrec`` showing it, for the caller to read in full.
        """
        offsets = np.asarray(offsets, dtype=np.int64)
        buf = self._buffer()
        if not len(offsets):
            z = np.zeros(0, np.uint32)
            return z, z, z, np.zeros(0, np.float32)
        arr = np.frombuffer(buf, dtype=np.uint8)
        need = offsets + 8 + IR_SIZE + 4
        safe = need <= self.size
        pos = np.where(safe, offsets, 0)[:, None] + np.arange(8 + IR_SIZE + 4)[None, :]
        raw = arr[pos]  # (n, 36)
        words = raw.view("<u4")
        magic, lrec, flag = words[:, 0].copy(), words[:, 1].copy(), words[:, 2].copy()
        label = np.where(flag > 0, raw[:, 32:36].copy().view("<f4")[:, 0], raw[:, 12:16].copy().view("<f4")[:, 0])
        magic[~safe] = 0
        return magic, lrec, flag, label.astype(np.float32)
