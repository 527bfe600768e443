"""Convert between RecordIO packs and image folders, copying image bytes unchanged."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facebone.errors import DataError


def convert(src: str | os.PathLike, dst: str | os.PathLike, *, to: str = "auto", layout: str = "insightface",
            progress: bool = True) -> dict[str, Any]:
    """Convert ``src`` (pack or folder) to ``dst``; ``to`` is 'folder', 'recordio' or 'auto'
    (the other kind). Returns {'images', 'num_classes', 'from', 'to'}."""
    from facebone.data.dataset import open_source
    from facebone.data.folder import write_image_folder
    from facebone.data.pack import write_im2rec_pack, write_insightface_pack
    from facebone.progress import Progress

    source = open_source(src)
    kind = "folder" if source.layout == "folder" else "recordio"
    if to == "auto":
        to = "recordio" if kind == "folder" else "folder"
    if to not in ("folder", "recordio"):
        raise DataError(f"convert: unknown target kind {to!r} (folder or recordio)")
    dst = Path(dst)
    if dst.exists() and any(dst.iterdir()):
        raise DataError(f"{dst}: output directory exists and is not empty")
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
