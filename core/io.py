"""Atomic file writes: a reader never sees a half-written file, and a crash while
writing leaves the previous version in place.

Every file facebone writes goes through :func:`atomic_write`: the content is written to a
temporary sibling ``.NAME.XXXXXXXX.tmp`` (:data:`TMP_NAME`), synced, then renamed over
``NAME``. A write that fails (disk full, quota, read-only file system, a file-size limit)
removes its temporary file and raises :class:`~facebone.errors.WriteError` naming the file
and saying that the previous version is kept. A temporary file left by a killed process is
removed by :func:`remove_stale_tmp` the next time its directory's owner starts.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

from facebone.errors import WriteError

TMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]+\.tmp$")
"""Names of facebone's temporary files: ``.NAME.<random or pid>.tmp`` beside ``NAME``."""

_OS_ERROR_IN_TEXT = re.compile(r"\(os error (\d+)\)")
"""How Rust-backed writers (safetensors) report an OS error in their message."""


def _os_failure(exc: BaseException) -> str | None:
    """The OS reason behind a failed write (``"No space left on device"``), or None for a bug."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    match = _OS_ERROR_IN_TEXT.search(str(exc))
    if match:
        return os.strerror(int(match.group(1)))
    text = str(exc)
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EIO):
        if os.strerror(code) in text:
            return os.strerror(code)
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``.

    ``path`` must not be a directory. On an OS failure (disk full, ...) the temporary file is
    removed, ``path`` is left as it was, and :class:`WriteError` names ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"{path}: is a directory; give a file name to write")
    had = path.exists()
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # after writing: some writers recreate the file (0600)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        reason = _os_failure(exc) if isinstance(exc, Exception) else None
        if reason is None:
            raise
        kept = "the previous version is kept" if had else "nothing was written"
        raise WriteError(f"{path}: cannot write ({reason}); {kept}") from exc
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def non_finite(values: dict[str, Any]) -> dict[str, str]:
    """``{key: "nan" | "inf" | "-inf"}`` for the non-finite floats of a flat dict."""
    return {k: ("nan" if math.isnan(v) else "inf" if v > 0 else "-inf")
            for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)}


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strict JSON to ``path`` atomically (NaN and infinities as null)."""
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def is_tmp_file(path: Path) -> bool:
    """True for a regular file named like facebone's temporary files (``.NAME.XXXX.tmp``)."""
    return bool(TMP_NAME.match(path.name)) and path.is_file() and not path.is_symlink()


def remove_stale_tmp(directory: str | os.PathLike) -> list[Path]:
    """Remove facebone's temporary files directly inside ``directory`` (left by a killed write).

    Call it only where no other process can be writing (e.g. under a run's lock). Nothing
    else is touched: other names, sub-directories and symlinks stay. Returns what was removed.
    """
    directory = Path(directory)
    if not directory.is_dir() or directory.is_symlink():
        return []
    removed = []
    for entry in directory.iterdir():
        if is_tmp_file(entry):
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            removed.append(entry)
    return removed


def check_output_file(path: str | os.PathLike, *, force: bool = False, inputs: tuple[Any, ...] = (),
                      what: str = "output") -> Path:
    """Refuse an output path a command must not write to, before any work is done.

    Refused: a directory, a missing parent folder, an existing file (unless ``force``), and
    any of ``inputs`` (the command's own input files, even with ``force``).
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"{path}: {what} is a directory; give a file name")
    if not path.parent.is_dir():
        raise WriteError(f"{path}: {what} folder {path.parent} does not exist")
    for item in inputs:
        if item is not None and path.exists() and Path(item).exists() and os.path.samefile(path, item):
            raise WriteError(f"{path}: {what} is the input file {item}; refusing to overwrite it")
    if path.exists() or path.is_symlink():
        if not force:
            raise WriteError(f"{path}: {what} exists; pass --force to overwrite it")
        if path.is_symlink():
            raise WriteError(f"{path}: {what} is a symbolic link; refusing to replace it")
    return path
