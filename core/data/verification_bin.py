"""InsightFace verification sets (``lfw.bin``, ``cfp_fp.bin``, ...), read without running pickle code.

A ``.bin`` is a pickle of ``(images, issame)``: a list of encoded images (Python 2 ``str``,
Python 3 ``bytes``, or numpy uint8 buffers) and a list of booleans, one per pair. It is read
with a restricted unpickler that only builds bytes, bytearrays, numpy uint8/bool arrays,
lists, tuples, numbers, booleans and None; any other global refuses the file.
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
from pathlib import Path
from typing import Any

import numpy as np

from facebone.errors import DataError
from facebone.limits import MAX_BIN_BYTES

_ALLOWED_DTYPES = {"u1", "uint8", "b1", "bool", "?"}


class _Refused(Exception):
    pass


class _DType:
    """Stand-in for ``numpy.dtype`` while unpickling: only uint8 and bool."""

    def __init__(self, name: Any, align: Any = False, copy: Any = False):
        name = name.decode("latin1") if isinstance(name, bytes) else name
        if not isinstance(name, str) or name.lstrip("|<>=") not in _ALLOWED_DTYPES:
            raise _Refused(f"numpy dtype {name!r} (only uint8 and bool are allowed)")
        self.dtype = np.dtype(name.lstrip("|<>="))

    def __setstate__(self, state: Any) -> None:  # byte order etc.: irrelevant for 1-byte types
        pass


class _Array:
    """Stand-in for a pickled ndarray (``_reconstruct`` + ``__setstate__``)."""

    def __init__(self, *args: Any):
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise _Refused("unexpected ndarray state")
        _, shape, dtype, _fortran, raw = state
        if not isinstance(dtype, _DType):
            raise _Refused("ndarray without an allowed dtype")
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise _Refused("ndarray whose data is not raw bytes")
        shape = tuple(int(x) for x in shape)
        self.array = np.frombuffer(bytes(raw), dtype=dtype.dtype).reshape(shape)


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
    if cls is not _NDARRAY:
        raise _Refused("numpy _reconstruct of something other than ndarray")
    return _Array()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if not isinstance(dtype, _DType):
        raise _Refused("ndarray without an allowed dtype")
    return np.frombuffer(bytes(buf), dtype=dtype.dtype).reshape(tuple(shape))


def _scalar(dtype: Any, raw: Any = None) -> Any:
    if not isinstance(dtype, _DType) or not isinstance(raw, (bytes, str)):
        raise _Refused("numpy scalar of a disallowed kind")
    raw = raw.encode("latin1") if isinstance(raw, str) else raw
    return np.frombuffer(raw, dtype=dtype.dtype)[0]


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Python 3 pickles bytes with protocol < 3 as _codecs.encode(str, 'latin1')
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode other than latin1 text")
    return text.encode("latin1")


def _bytearray(data: Any = b"", encoding: Any = None) -> bytearray:
    # protocols < 5 pickle a bytearray as bytearray(latin1 text, 'latin-1'); never a size (bytearray(10**10))
    if isinstance(data, str) and encoding in ("latin1", "latin-1"):
        return bytearray(data.encode("latin1"))
    if isinstance(data, (bytes, bytearray)) and encoding is None:
        return bytearray(data)
    raise _Refused(f"bytearray({type(data).__name__}) (only bytes or latin-1 text)")


_NDARRAY = object()
_GLOBALS: dict[tuple[str, str], Any] = {("_codecs", "encode"): _codecs_encode}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _GLOBALS[(_mod, "_reconstruct")] = _reconstruct
    _GLOBALS[(_mod, "scalar")] = _scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _GLOBALS[(_mod, "_frombuffer")] = _frombuffer
_GLOBALS[("numpy", "ndarray")] = _NDARRAY
_GLOBALS[("numpy", "dtype")] = _DType
_GLOBALS[("__builtin__", "bytearray")] = _bytearray
_GLOBALS[("builtins", "bytearray")] = _bytearray


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"global '{module}.{name}'") from None


def _unwrap(obj: Any) -> Any:
    """A stand-in ndarray as its array; anything else as it is (no recursion: nesting is refused)."""
    return obj.array if isinstance(obj, _Array) else obj


def load_bin_raw(path: str | os.PathLike) -> tuple[list[bytes], np.ndarray]:
    """(encoded images, issame) from a ``.bin``, without decoding the images."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: verification set not found")
    data = path.read_bytes()
    try:  # opcode by opcode: a length that runs past the end is refused before anything allocates it
        for _ in pickletools.genops(io.BytesIO(data)):
            pass
    except Exception as exc:  # noqa: BLE001 - any malformed opcode stream is a bad file
        raise DataError(f"{path}: not a readable verification .bin (bad pickle: {exc})") from None
    obj: Any = None
    for encoding in ("bytes",):  # 'bytes' reads Python 2 str as bytes and leaves Python 3 pickles as they are
        try:
            obj = _SafeUnpickler(io.BytesIO(data), encoding=encoding).load()
        except _Refused as exc:
            raise DataError(f"{path}: refused to load: the pickle asks for {exc}; a verification .bin holds "
                            "only encoded images and booleans") from None
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise DataError(f"{path}: not a readable verification .bin ({type(exc).__name__}: {exc})") from None
    obj = _unwrap(obj)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and isinstance(obj[0], (list, tuple))):
        raise DataError(f"{path}: expected a pickled (images, issame) pair")
    images, issame = obj[0], _unwrap(obj[1])
    bins: list[bytes] = []
    total = 0
    limit = MAX_BIN_BYTES.value()
    for i, b in enumerate(images):
        b = _unwrap(b)
        if isinstance(b, np.ndarray) and b.dtype == np.uint8:
            b = b.tobytes()
        if not isinstance(b, (bytes, bytearray)):
            raise DataError(f"{path}: image {i} is a {type(b).__name__}, expected encoded image bytes")
        total += len(b)
        if total > limit:
            raise DataError(f"{path}: its images hold more than {limit:,} bytes once unpickled (image {i}); "
                            f"{MAX_BIN_BYTES.hint()}")
        bins.append(bytes(b))
    if isinstance(issame, np.ndarray) and issame.dtype.kind in "bu":
        same = issame.astype(bool).reshape(-1)
    elif isinstance(issame, (list, tuple)) and all(
            isinstance(x, (bool, int, np.bool_, np.integer)) and not isinstance(x, _Array) for x in issame):
        same = np.asarray([bool(x) for x in issame], dtype=bool)
    else:
        raise DataError(f"{path}: issame must be a flat list of booleans")
    if len(bins) != 2 * len(same):
        raise DataError(f"{path}: {len(bins)} images for {len(same)} pairs (expected {2 * len(same)})")
    return bins, same


def load_bin(path: str | os.PathLike, *, image_size: int | tuple[int, int] | None = None,
             decoder: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (2P, H, W, 3) RGB, issame bool (P,)) from an InsightFace ``.bin``.

    Images are decoded once into one compact uint8 array. All images must share one size,
    unless ``image_size`` is given, in which case they are resized to it.
    """
    from facebone.data.decode import decode_many

    bins, same = load_bin_raw(path)
    images = decode_many(bins, size=image_size, decoder=decoder, where=lambda i: f"{path}: image {i}")
    return images, same


def write_bin(path: str | os.PathLike, encoded_images: list[bytes], issame: list[bool]) -> Path:
    """Write a ``.bin`` that InsightFace reads (``pickle.load(f, encoding='bytes')``), atomically."""
    from facebone.io import atomic_write_bytes

    images = [bytes(b) for b in encoded_images]
    same = [bool(x) for x in issame]
    if len(images) != 2 * len(same):
        raise DataError(f"{path}: {len(images)} images for {len(same)} pairs (expected {2 * len(same)})")
    return atomic_write_bytes(path, pickle.dumps((images, same), protocol=4))
