"""`facebone compare` reads saved scores of several runs and prints one table + one ROC PNG."""
from __future__ import annotations

import numpy as np

from facebone.cli import main
from facebone.metrics.artifacts import save_npy, save_summary


def _run(tmp_path, name: str, separation: float, seed: int):
    rng = np.random.default_rng(seed)
    out = tmp_path / name / "eval" / "verification"
    labels = rng.random(4000) < 0.5
    scores = rng.normal(size=4000) + separation * labels
    save_npy(out / "lfw_scores.npy", scores)
    save_npy(out / "lfw_labels.npy", labels)
    save_summary(out, "verification", {"lfw/accuracy": 0.9},
                 {"lfw": {"scores": "lfw_scores.npy", "labels": "lfw_labels.npy", "accuracy": 0.9,
                          "accuracy_std": 0.01}})
    ident = tmp_path / name / "eval" / "ijb_identification"
    save_summary(ident, "ijb_identification", {"ijbc_1n/rank1": 0.8}, {})
    return tmp_path / name


def test_compare_table_and_plot(tmp_path, capsys):
    a = _run(tmp_path, "r50", 3.0, 0)
    b = _run(tmp_path, "r18", 1.0, 1)
    png = tmp_path / "cmp.png"
    assert main(["compare", str(a), str(b), "--out", str(png)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[1]
    assert "TPR@1e-6" in header and "AUC" in header and "EER" in header and "Acc" in header
    r50 = next(line for line in lines if line.startswith("r50"))
    r18 = next(line for line in lines if line.startswith("r18"))
    auc = header.split().index("AUC")
    assert float(r50.split()[auc]) > float(r18.split()[auc])  # better separated run, larger AUC
    assert "90.00" in r50 and "ijbc_1n/rank1=0.8000" in out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_compare_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert "nope: run directory not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "no saved evaluation" in capsys.readouterr().err
