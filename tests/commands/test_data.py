"""`facebone data synth|convert|info`."""
from __future__ import annotations

import json

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
