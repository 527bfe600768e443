"""facebone.io: atomic writes keep the previous file on a failed write and say which file."""
from __future__ import annotations

import errno
import json
import os

import pytest

from facebone.errors import WriteError
from facebone.io import atomic_write, atomic_write_json, atomic_write_text, check_output_file


def _fail_with(exc):  # type: ignore[no-untyped-def]
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(b"half of the new ")
        raise exc
    return write


@pytest.mark.parametrize("exc, reason", [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
    (Exception("Error while serializing: I/O error: No space left on device (os error 28)"), "No space left"),
])
def test_a_failed_write_keeps_the_previous_file_and_names_it(tmp_path, exc, reason):
    path = tmp_path / "last.safetensors"
    path.write_bytes(b"previous")
    with pytest.raises(WriteError, match=rf"last.safetensors: cannot write \({reason}.*\); the previous version is kept"):
        atomic_write(path, _fail_with(exc))
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]  # no temporary file left


def test_a_bug_in_the_writer_keeps_its_traceback(tmp_path):
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "x", _fail_with(TypeError("a bug")))
    assert list(tmp_path.iterdir()) == []


def test_a_real_file_size_limit(tmp_path):
    import resource
    import subprocess
    import sys

    path = tmp_path / "big.bin"
    path.write_bytes(b"old")
    code = ("import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000)); "
            "from facebone.io import atomic_write_bytes; atomic_write_bytes(%r, b'x' * 5000)" % str(path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "WriteError" in done.stderr and "big.bin: cannot write (File too large); the previous version" in done.stderr
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["big.bin"]
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # (the limit was the child's only)


def test_writing_onto_a_directory_is_one_line(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(WriteError, match="d: is a directory"):
        atomic_write_text(tmp_path / "d", "x")


def test_json_has_no_nan(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"a": float("nan"), "b": [float("-inf"), 1.0], "c": {"d": float("inf")}})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": None, "b": [None, 1.0], "c": {"d": None}}


def test_check_output_file(tmp_path):
    (tmp_path / "exists").write_text("mine")
    (tmp_path / "dir").mkdir()
    with pytest.raises(WriteError, match="exists; pass --force"):
        check_output_file(tmp_path / "exists")
    assert check_output_file(tmp_path / "exists", force=True) == tmp_path / "exists"
    with pytest.raises(WriteError, match="is the input file"):
        check_output_file(tmp_path / "exists", force=True, inputs=(tmp_path / "exists",))
    with pytest.raises(WriteError, match="is a directory"):
        check_output_file(tmp_path / "dir", force=True)
    with pytest.raises(WriteError, match="folder .*missing does not exist"):
        check_output_file(tmp_path / "missing" / "x.onnx")
    os.symlink(tmp_path / "exists", tmp_path / "link")
    with pytest.raises(WriteError, match="symbolic link"):
        check_output_file(tmp_path / "link", force=True)
