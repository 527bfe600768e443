"""`facebone plot`: curves of several runs from their TensorBoard files, PNGs and a final-value table."""
from __future__ import annotations

from pathlib import Path

import pytest

from facebone.cli import main


def fake_run(root: Path, name: str, steps: int, loss0: float) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    run = root / name
    writer = SummaryWriter(str(run / "tensorboard"))
    for step in range(1, steps + 1):
        writer.add_scalar("train/loss", loss0 / step, step)
        writer.add_scalar("train/lr", 0.1 * (1 - step / (steps + 1)), step)
    writer.add_scalar("eval/quick/accuracy", 0.5 + steps / 100, steps)
    writer.close()
    return run


def test_overlays_runs_of_different_lengths(tmp_path: Path, capsys) -> None:
    a, b = fake_run(tmp_path, "arc", 30, 10.0), fake_run(tmp_path, "cos", 12, 8.0)
    out = tmp_path / "plots"
    assert main(["plot", str(a), str(b), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["eval_quick_accuracy.png", "train_loss.png", "train_lr.png"]
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:3]}
    assert float(rows["arc"][0]) == pytest.approx(0.8) and float(rows["cos"][0]) == pytest.approx(0.62)
    assert float(rows["arc"][1]) == pytest.approx(10.0 / 30, rel=1e-4)   # last loss of each run
    assert float(rows["cos"][1]) == pytest.approx(8.0 / 12, rel=1e-4)
    # a second plot into the same folder is allowed (it is facebone's), with a metric filter
    assert main(["plot", str(a), "--metrics", "loss", "--out", str(out)]) == 0


def test_bad_input_one_line(tmp_path: Path, capsys) -> None:
    run = fake_run(tmp_path, "arc", 5, 1.0)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    cases = [
        (["plot", str(tmp_path / "missing"), "--out", str(tmp_path / "o1")], "not a run directory"),
        (["plot", str(tmp_path), "--out", str(tmp_path / "o2")], "no TensorBoard event files"),
        (["plot", str(run), "--metrics", "accuracyy", "--out", str(tmp_path / "o3")], "no such curve"),
        (["plot", str(run), "--out", str(foreign)], "not empty"),
        (["plot", str(run), "--out", str(foreign / "notes.txt")], "not a folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert (foreign / "notes.txt").read_text() == "keep me" and sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
