"""`facebone data synth|convert|info`."""
from __future__ import annotations

import json
import os

from facebone.cli import main


def test_synth_info_convert_round_trip(tmp_path, capsys):
    src = tmp_path / "s"
    assert main(["data", "synth", str(src), "--identities", "4", "--images-per-identity", "3",
                 "--holdout-identities", "3", "--pairs", "4", "--image-size", "20", "--seed", "1"]) == 0
    assert main(["data", "info", str(src), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert facts["images"] == 12 and facts["identities"] == 4 and facts["layout"] == "insightface"
    assert facts["image_size"] == [20, 20]
    assert main(["data", "convert", str(src), str(tmp_path / "f")]) == 0
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["00000", "00001", "00002", "00003"]
    assert main(["data", "convert", str(tmp_path / "f"), str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "train.rec").read_bytes() == (src / "train.rec").read_bytes()
    assert (tmp_path / "r" / "train.idx").read_bytes() == (src / "train.idx").read_bytes()
    assert main(["data", "info", str(src / "holdout.bin")]) == 0
    assert "pairs" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facebone: error: ") and "missing: training data not found" in err and err.count("\n") == 1
    (tmp_path / "f").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    assert main(["data", "convert", str(tmp_path / "f"), str(tmp_path / "out")]) == 2
    assert "out: output directory exists and is not empty" in capsys.readouterr().err  # refused before reading
    assert main(["data", "convert", str(tmp_path / "f"), str(tmp_path / "new")]) == 2
    assert "empty image folder" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_convert_writes_a_temporary_sibling_and_renames_it(tmp_path, capsys, monkeypatch):
    import pytest

    import facebone.data.convert as conv
    from facebone.errors import DataError

    src = tmp_path / "s"
    assert main(["data", "synth", str(src), "--identities", "3", "--images-per-identity", "2",
                 "--holdout-identities", "2", "--pairs", "2", "--image-size", "16"]) == 0
    seen = []
    real_write = conv._write

    def spy(source, dst, *args):  # type: ignore[no-untyped-def]
        seen.append(dst)
        assert dst.name.startswith(".f.") and dst.name.endswith(".partial") and not any((tmp_path / "f").iterdir())
        return real_write(source, dst, *args)

    monkeypatch.setattr(conv, "_write", spy)
    (tmp_path / "f").mkdir()  # an empty destination is allowed, and replaced
    assert main(["data", "convert", str(src), str(tmp_path / "f")]) == 0
    assert seen and not seen[0].exists() and len(list((tmp_path / "f").iterdir())) == 3
    assert not (tmp_path / "f" / ".facebone-partial").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "s"]

    def boom(source, dst, *args):  # type: ignore[no-untyped-def]
        (dst / "half").write_text("half-written")
        raise DataError("corrupt record")

    monkeypatch.setattr(conv, "_write", boom)
    for _ in range(2):  # the rerun is not refused: nothing was left behind
        with pytest.raises(DataError, match="corrupt record"):
            conv.convert(src, tmp_path / "g", progress=False)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "s"]


def test_a_stale_partial_directory_of_a_dead_process_is_removed(tmp_path):
    import facebone.data.convert as conv

    stale = tmp_path / ".out.abc123.partial"
    stale.mkdir()
    (stale / conv.PARTIAL_MARKER).write_text("999999999\n")
    alive = tmp_path / ".out.def456.partial"
    alive.mkdir()
    (alive / conv.PARTIAL_MARKER).write_text(f"{os.getpid()}\n")
    foreign = tmp_path / ".out.zzz.partial"  # no marker: not ours
    foreign.mkdir()
    fresh = conv._partial_sibling(tmp_path / "out")
    assert not stale.exists() and alive.exists() and foreign.exists() and fresh.is_dir()
