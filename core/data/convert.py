"""Convert between RecordIO packs and image folders, copying image bytes unchanged."""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facebone.errors import DataError, WriteError


def convert(src: str | os.PathLike, dst: str | os.PathLike, *, to: str = "auto", layout: str = "insightface",
            progress: bool = True) -> dict[str, Any]:
    """Convert ``src`` (pack or folder) to ``dst``; ``to`` is 'folder', 'recordio' or 'auto'
    (the other kind). Returns {'images', 'num_classes', 'from', 'to'}."""
    from facebone.data.dataset import open_source

    dst = Path(dst)
    check_destination(Path(src), dst)
    if to not in ("auto", "folder", "recordio"):
        raise DataError(f"convert: unknown target kind {to!r} (folder or recordio)")
    if layout not in ("insightface", "im2rec"):
        raise DataError(f"convert: unknown RecordIO layout {layout!r} (insightface or im2rec)")
    source = open_source(src)
    kind = "folder" if source.layout == "folder" else "recordio"
    if to == "auto":
        to = "recordio" if kind == "folder" else "folder"
    final, dst = dst, _partial_sibling(dst)
    try:
        result = _write(source, dst, to, layout, kind, progress)
        (dst / PARTIAL_MARKER).unlink()
        if final.is_dir():
            final.rmdir()  # empty (checked above): the converted set takes its place
        os.rename(dst, final)
    except OSError as exc:
        shutil.rmtree(dst, ignore_errors=True)
        raise WriteError(f"{final}: conversion failed while writing ({exc.strerror}); nothing was written") from None
    except BaseException:
        shutil.rmtree(dst, ignore_errors=True)
        raise
    return result


PARTIAL_MARKER = ".facebone-partial"
"""A file inside a conversion's temporary directory: its process id."""


def check_destination(src: Path, dst: Path) -> None:
    """Refuse, before any work, a destination that is a file, a link, not empty, or the source."""
    if dst.is_symlink():
        raise DataError(f"{dst}: output is a symbolic link; give a new directory")
    if dst.exists() and not dst.is_dir():
        raise DataError(f"{dst}: output exists and is a file; give a new directory")
    if dst.is_dir() and any(dst.iterdir()):
        raise DataError(f"{dst}: output directory exists and is not empty")
    if not src.exists():
        raise DataError(f"{src}: training data not found")
    src_root = (src if src.is_dir() else src.parent).resolve()
    target = dst.resolve()
    if target == src_root or src_root in target.parents:
        raise DataError(f"{dst}: output is inside the source {src}; give a directory outside it")
    if target in src_root.parents:
        raise DataError(f"{dst}: output contains the source {src}; give a new directory")


def _partial_sibling(dst: Path) -> Path:
    """A new temporary directory beside ``dst`` (stale ones of dead processes are removed first)."""
    parent = dst.parent
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f".{glob.escape(dst.name)}.*.partial"):
        marker = old / PARTIAL_MARKER
        if old.is_dir() and not old.is_symlink() and marker.is_file() and not _alive(marker.read_text().strip()):
            shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".partial", dir=parent))
    (tmp / PARTIAL_MARKER).write_text(f"{os.getpid()}\n")
    return tmp


def _alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _write(source: Any, dst: Path, to: str, layout: str, kind: str, progress: bool) -> dict[str, Any]:
    from facebone.data.folder import write_image_folder
    from facebone.data.pack import write_im2rec_pack, write_insightface_pack
    from facebone.progress import Progress

    n = len(source)
    with Progress(n, "convert", unit="img", enabled=progress) as bar:
        def items(order: np.ndarray) -> Iterator[tuple[bytes, int, int]]:
            for i in order.tolist():
                data = source.image_bytes(i)
                bar.update(1)
                yield data, int(source.labels[i]), i

        if to == "folder":
            keys = getattr(source, "keys", np.arange(n))
            width = max(8, len(str(int(np.max(keys)) if n else 0)))
            count = write_image_folder(dst, ((d, lab, f"{int(keys[i]):0{width}d}") for d, lab, i in items(np.arange(n))),
                                       num_classes=source.num_classes)
        else:
            order = np.argsort(source.labels, kind="stable")
            size = source.image_size
            samples = ((d, lab) for d, lab, _ in items(order))
            if layout == "insightface":
                count = write_insightface_pack(dst, samples, image_size=size)["images"]
            elif layout == "im2rec":
                count = write_im2rec_pack(dst, samples, image_size=size)["images"]
            else:
                raise DataError(f"convert: unknown RecordIO layout {layout!r} (insightface or im2rec)")
            from facebone.io import atomic_write_text

            atomic_write_text(dst / "property", f"{source.num_classes},{size[0]},{size[1]}\n")
    return {"images": count, "num_classes": int(source.num_classes), "from": kind, "to": to}
