"""Files of `facebone embed`: face tables read (.csv) and embedding files written.

**Face tables** (``--boxes`` / ``--landmarks``): one face per row, ``path,x1,y1,x2,y2[,angle]``
or ``path,x1,y1,...,x5,y5``; a first row that is not numbers is a header. A relative path is
taken from the table's folder when the file is there, else from the working directory. An
image may have several rows (several faces).

**Embedding files** hold one row per embedded face, in input order:

* ``.npy``: float32 ``(N, D)``, with the manifest ``FEATS.npy.json`` beside it (``paths`` and
  ``faces`` name each row, then how the file was made and which inputs failed);
* ``.safetensors``: tensor ``embeddings`` ``(N, D)``, the manifest in the file's metadata
  (values JSON-encoded);
* ``.csv``: header ``path,face,e0,...``, one row per face, the manifest ``FEATS.csv.json`` beside it.

``face`` is the face's index among its image's table rows (0 without a table). An existing
output is replaced only with ``overwrite`` and only when facebone wrote it (its manifest says
``"written_by": "facebone embed"``); anything else is refused, never touched.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from facebone.errors import ConfigError, DataError
from facebone.io import atomic_write, atomic_write_json, atomic_write_text

FORMATS = (".npy", ".safetensors", ".csv")
WRITTEN_BY = "facebone embed"
NUMBERS = {"box": (4, 5), "landmarks": (10,)}


@dataclasses.dataclass(frozen=True)
class FaceRow:
    path: Path
    """The image, resolved."""
    values: list[Any]
    """Numbers (or the raw text of a cell that is not one)."""
    line: int
    table: Path


def _number(cell: str) -> Any:
    try:
        return float(cell)
    except ValueError:
        return cell.strip()


def read_face_table(path: str | Path, kind: str) -> list[FaceRow]:
    """Rows of a boxes or landmarks table (see the module docstring); a row with the wrong number
    of values is kept (its face then fails with a message naming the line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the {kind} table ({exc.strerror or exc})") from None
    rows = []
    for line_no, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in cells]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        values = [_number(c) for c in cells[1:]]
        if not rows and line_no == 1 and values and isinstance(values[0], str):
            continue  # header
        image = Path(cells[0]).expanduser()
        if not image.is_absolute():
            image = path.parent / image if (path.parent / image).exists() else image
        rows.append(FaceRow(image.resolve(), values, line_no, path))
    if not rows:
        raise DataError(f"{path}: no rows (expected path,{'x1,y1,x2,y2[,angle]' if kind == 'box' else 'x1,y1,...,x5,y5'})")
    return rows


def check_format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"--out {out}: unknown format '{suffix}'; use one of {', '.join(FORMATS)}")
    return suffix


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def _written_by_us(out: Path) -> bool:
    if out.suffix.lower() == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(out), framework="numpy") as fh:
                return (fh.metadata() or {}).get("written_by") == WRITTEN_BY
        except Exception:  # noqa: BLE001 - unreadable: not ours
            return False
    try:
        manifest = json.loads(manifest_path(out).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("written_by") == WRITTEN_BY and manifest.get("file") == out.name


def check_output(out: Path, overwrite: bool, inputs: tuple[Any, ...] = ()) -> None:
    """Refuse an ``out`` that exists unless ``overwrite`` and facebone wrote it (see the module
    docstring); a folder, a missing parent folder and the command's own ``inputs`` always."""
    from facebone.io import check_output_file

    suffix = check_format(out)
    check_output_file(out, force=True, inputs=inputs, what="--out")
    side = manifest_path(out) if suffix != ".safetensors" else None
    present = [p for p in (out, side) if p is not None and (p.exists() or p.is_symlink())]
    if not present:
        return
    if not overwrite:
        raise ConfigError(f"{present[0]}: --out exists; pass --overwrite to replace it (only files written by "
                          "facebone embed are replaced)")
    if out.is_symlink() or (side is not None and side.is_symlink()):
        raise ConfigError(f"{out}: --out or its manifest is a symbolic link; refusing to replace it")
    if not out.exists() or not _written_by_us(out):
        what = f"no {WRITTEN_BY} manifest" + (f" {side.name}" if side is not None else " in its metadata")
        raise ConfigError(f"{present[0]}: not written by facebone embed ({what}); refusing to replace it, "
                          "even with --overwrite")


def write_embeddings(out: Path, embeddings: np.ndarray, paths: list[str], faces: list[int],
                     manifest: dict[str, Any]) -> list[Path]:
    """Write the rows and their manifest (see the module docstring); returns the files written."""
    suffix = check_format(out)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    info = {"written_by": WRITTEN_BY, "file": out.name, "format": suffix[1:], "rows": int(len(emb)),
            "embedding_size": int(emb.shape[1]) if emb.ndim == 2 else 0, **manifest}
    if suffix == ".safetensors":
        from safetensors.numpy import save_file

        meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in
                {**info, "paths": paths, "faces": faces}.items()}
        atomic_write(out, lambda tmp: save_file({"embeddings": emb}, tmp, metadata=meta))
        return [out]
    if suffix == ".npy":
        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, emb)

        atomic_write(out, write)
        atomic_write_json(manifest_path(out), {**info, "paths": paths, "faces": faces})
        return [out, manifest_path(out)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "face", *[f"e{j}" for j in range(emb.shape[1])]])
    for p, f, row in zip(paths, faces, emb):
        writer.writerow([p, f, *[f"{v:.9g}" for v in row]])
    atomic_write_text(out, buf.getvalue())
    atomic_write_json(manifest_path(out), {**info, "paths_in": "the 'path' and 'face' columns"})
    return [out, manifest_path(out)]


def read_embeddings(path: str | Path) -> tuple[np.ndarray, list[str], list[int]]:
    """``(embeddings, paths, faces)`` of a file written by :func:`write_embeddings`."""
    path = Path(path)
    suffix = check_format(path)
    if suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            return fh.get_tensor("embeddings"), json.loads(meta["paths"]), json.loads(meta["faces"])
    if suffix == ".npy":
        manifest = json.loads(manifest_path(path).read_text())
        return np.load(path, allow_pickle=False), manifest["paths"], manifest["faces"]
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    emb = np.array([[float(v) for v in r[2:]] for r in rows], dtype=np.float32)
    return emb, [r[0] for r in rows], [int(r[1]) for r in rows]
