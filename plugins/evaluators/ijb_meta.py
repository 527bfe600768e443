"""Readers for InsightFace's IJB-B/C meta files, strict: a bad line is a DataError naming file and line.

Layout (``ROOT`` = e.g. ``IJB_release/IJBC``; ``p`` = ``ijbc`` or ``ijbb``)::

    ROOT/meta/p_face_tid_mid.txt          image_name template_id media_id      (one line per image)
    ROOT/meta/p_name_5pts_score.txt       image_name x1 y1 ... x5 y5 score     (same images, same order)
    ROOT/meta/p_template_pair_label.txt   template_id template_id label(0/1)
    ROOT/meta/p_1N_gallery_G1.csv, _G2.csv (IJB-B: _S1, _S2), p_1N_probe_mixed.csv
                                          header, then TEMPLATE_ID,SUBJECT_ID,...
    ROOT/loose_crop/image_name
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np

from facebone.errors import DataError


def meta_path(root: Path, prefix: str, suffix: str) -> Path:
    """``root/meta/<prefix>_<suffix>``; DataError if it does not exist."""
    path = root / "meta" / f"{prefix}_{suffix}"
    if not path.is_file():
        raise DataError(f"{path}: IJB meta file not found")
    return path


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    return text.splitlines()


def _find_bad_int_line(path: Path, columns: int, sep: str | None = None, skip: int = 0) -> None:
    """Slow scan that raises DataError for the first line that is not ``columns`` integers."""
    for number, line in enumerate(_read_lines(path), start=1):
        if number <= skip or not line.strip():
            continue
        fields = line.split(sep) if sep else line.split()
        if len(fields) < columns or (sep is None and len(fields) != columns):
            raise DataError(f"{path}:{number}: expected {columns} fields, found {len(fields)}: {line.strip()[:80]!r}")
        for field in fields[:columns]:
            try:
                int(field)
            except ValueError:
                raise DataError(f"{path}:{number}: {field.strip()!r} is not an integer") from None


def read_int_table(path: Path, columns: int) -> np.ndarray:
    """A whitespace-separated file of ``columns`` integers per line -> ``(lines, columns)`` int64.

    Fast path parses the whole file at once; on any irregularity a line-by-line scan names the line.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    body = data.strip()
    n_lines = body.count(b"\n") + 1 if body else 0
    if b"\n\n" in body.replace(b"\r", b"") or b"\n \n" in body:  # blank lines: count them the slow way
        n_lines = sum(1 for ln in data.splitlines() if ln.strip())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            values = np.fromstring(data, dtype=np.int64, sep=" ")  # noqa: NPY201 (text mode)
        except ValueError:
            values = np.zeros(0, np.int64)
    if values.size != n_lines * columns or b"." in data:
        _find_bad_int_line(path, columns)
        raise DataError(f"{path}: could not parse as {columns} integers per line")
    return values.reshape(n_lines, columns)


@dataclasses.dataclass
class ImageList:
    """The images of an IJB set, in file order."""

    names: list[str]
    templates: np.ndarray
    medias: np.ndarray
    landmarks: np.ndarray  # (N, 5, 2) float32
    face_scores: np.ndarray  # (N,) float32
    landmark_file: Path  # the *_name_5pts_score.txt read
    lines: np.ndarray  # (N,) line of each image in landmark_file (1-based)


def read_images(root: Path, prefix: str) -> ImageList:
    """Parse ``*_face_tid_mid.txt`` and ``*_name_5pts_score.txt`` and check they list the same images."""
    tid_path = meta_path(root, prefix, "face_tid_mid.txt")
    lmk_path = meta_path(root, prefix, "name_5pts_score.txt")
    names, tids, mids = [], [], []
    for number, line in enumerate(_read_lines(tid_path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise DataError(f"{tid_path}:{number}: expected 'image_name template_id media_id', "
                            f"found {len(fields)} fields")
        try:
            tids.append(int(fields[1]))
            mids.append(int(fields[2]))
        except ValueError:
            raise DataError(f"{tid_path}:{number}: template and media ids must be integers") from None
        names.append(fields[0])
    lmk_names, rows, lmk_lines = [], [], []
    for number, line in enumerate(_read_lines(lmk_path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 12:
            raise DataError(f"{lmk_path}:{number}: expected image name, 10 landmark coordinates and a score "
                            f"(12 fields), found {len(fields)}")
        try:
            row = [float(x) for x in fields[1:]]
        except ValueError:
            raise DataError(f"{lmk_path}:{number}: landmarks and score must be numbers") from None
        if not all(map(math.isfinite, row)):
            bad = next(i for i, v in enumerate(row) if not math.isfinite(v))
            what = "the detector score" if bad == 10 else f"landmark coordinate {bad + 1}"
            raise DataError(f"{lmk_path}:{number}: {what} of image {fields[0]!r} is {fields[1 + bad]!r}, "
                            "not a finite number")
        rows.append(row)
        lmk_lines.append(number)
        if len(lmk_names) < len(names) and fields[0] != names[len(lmk_names)]:
            raise DataError(f"{lmk_path}:{number}: image {fields[0]!r} but {tid_path.name} line "
                            f"{len(lmk_names) + 1} lists {names[len(lmk_names)]!r} (the files must list the same "
                            "images in the same order)")
        lmk_names.append(fields[0])
    if len(lmk_names) != len(names):
        raise DataError(f"{lmk_path}: {len(lmk_names)} images but {tid_path} lists {len(names)}")
    if not names:
        raise DataError(f"{tid_path}: no images listed")
    table = np.asarray(rows, dtype=np.float64)
    return ImageList(names=names, templates=np.asarray(tids, np.int64), medias=np.asarray(mids, np.int64),
                     landmarks=table[:, :10].reshape(-1, 5, 2).astype(np.float32),
                     face_scores=table[:, 10].astype(np.float32), landmark_file=lmk_path,
                     lines=np.asarray(lmk_lines, np.int64))


def read_pairs(root: Path, prefix: str, known_templates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Path]:
    """``(t1, t2, label)`` of ``*_template_pair_label.txt``; every template must have images."""
    path = meta_path(root, prefix, "template_pair_label.txt")
    table = read_int_table(path, 3)
    if len(table) == 0:
        raise DataError(f"{path}: no pairs listed")
    labels = table[:, 2]
    bad_label = np.flatnonzero((labels != 0) & (labels != 1))
    if len(bad_label):
        raise DataError(f"{path}:{bad_label[0] + 1}: label {labels[bad_label[0]]} is not 0 or 1")
    genuine = int(labels.sum())
    if genuine == 0 or genuine == len(labels):
        kind, other = ("genuine (label 1)", "impostor pairs (label 0)") if genuine else \
            ("impostor (label 0)", "genuine pairs (label 1)")
        raise DataError(f"{path}: all {len(labels)} pairs are {kind}; a ROC, TPR at FPR and AUC need "
                        f"{other} too")
    known = np.unique(known_templates)
    for col in (0, 1):
        missing = np.flatnonzero(~np.isin(table[:, col], known))
        if len(missing):
            i = int(missing[0])
            raise DataError(f"{path}:{i + 1}: template {table[i, col]} has no image in {prefix}_face_tid_mid.txt")
    return table[:, 0], table[:, 1], labels, path


def _is_int(field: str) -> bool:
    try:
        int(field)
    except ValueError:
        return False
    return True


def read_subjects(root: Path, prefix: str, suffix: str, known_templates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique template ids, subject id of each)`` from a 1:N csv (header, TEMPLATE_ID,SUBJECT_ID,...)."""
    path = meta_path(root, prefix, suffix)
    tids, sids = [], []
    lines = _read_lines(path)
    head = lines[0].split(",") if lines else []
    if len(head) >= 2 and all(_is_int(f) for f in head[:2]):
        raise DataError(f"{path}:1: expected the header row (TEMPLATE_ID,SUBJECT_ID,...), found a template "
                        f"{lines[0].strip()[:80]!r}; InsightFace's readers skip line 1, so add the header")
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < 2:
            raise DataError(f"{path}:{number}: expected TEMPLATE_ID,SUBJECT_ID,..., found {line.strip()[:80]!r}")
        try:
            tids.append(int(fields[0]))
            sids.append(int(fields[1]))
        except ValueError:
            raise DataError(f"{path}:{number}: template and subject ids must be integers") from None
    if not tids:
        raise DataError(f"{path}: no templates listed")
    t = np.asarray(tids, np.int64)
    s = np.asarray(sids, np.int64)
    unique, first = np.unique(t, return_index=True)
    missing = np.flatnonzero(~np.isin(t, known_templates))
    if len(missing):
        i = int(missing[0])
        raise DataError(f"{path}:{i + 2}: template {t[i]} has no image in {prefix}_face_tid_mid.txt")
    return unique, s[first]
