"""`facebone embed` and `facebone verify` on a small trained run, and facebone.load."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebone.cli import main
from facebone.predict.outputs import read_embeddings


def _pair_cosines(emb: np.ndarray) -> np.ndarray:
    e = emb.astype(np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return (e[0::2] * e[1::2]).sum(1)


def test_embed_on_held_out_images_gives_the_scores_eval_saved(tiny_run: Path, holdout_files: list[Path],
                                                               tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Acceptance: pair cosines of `facebone embed` on the held-out image files equal the pair scores
    `facebone eval` saved (<= 1e-5), in every output format."""
    saved = np.load(tiny_run / "eval" / "verification" / "holdout_scores.npy")
    folder = holdout_files[0].parent
    for fmt in ("npy", "safetensors", "csv"):
        out = tmp_path / f"feats.{fmt}"
        assert main(["embed", str(tiny_run), str(folder), "--out", str(out)]) == 0
        emb, paths, faces = read_embeddings(out)
        assert [Path(p).name for p in paths] == [p.name for p in holdout_files]  # sorted folder order = pair order
        assert faces == [0] * len(paths)
        assert emb.shape == (len(holdout_files), 32)
        assert np.abs(_pair_cosines(emb) - saved).max() <= 1e-5
    assert "120 embeddings (32-d)" in capsys.readouterr().out


def test_load_api_embed_similarity_verify(tiny_run: Path, holdout_files: list[Path]) -> None:
    import facebone

    model = facebone.load(tiny_run)
    emb = model.embed(holdout_files[:4])
    assert emb.dtype == np.float32 and emb.shape == (4, 32)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    raw = model.embed(holdout_files[:4], normalize=False)
    assert np.allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), emb, atol=1e-6)
    sim = model.similarity(emb[0], emb[1])
    assert sim == pytest.approx(float(emb[0] @ emb[1]), abs=1e-6)
    assert model.similarity(holdout_files[0], holdout_files[1]) == pytest.approx(sim, abs=1e-6)
    saved = np.load(tiny_run / "eval" / "verification" / "holdout_scores.npy")
    labels = np.load(tiny_run / "eval" / "verification" / "holdout_labels.npy")
    result = model.verify(holdout_files[0], holdout_files[1], far=0.1)
    t = model.threshold(0.1)
    assert result.threshold == t.value and result.same == (result.similarity >= t.value)
    assert ((saved[~labels] >= t.value).sum() <= 0.1 * (~labels).sum())
    assert "FAR 0.1 on 'verification/holdout'" in result.source and "impostor" in result.source


def test_verify_command_prints_similarity_threshold_source_decision(tiny_run: Path, holdout_files: list[Path],
                                                                    capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["verify", str(tiny_run), str(holdout_files[0]), str(holdout_files[1])]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert set(lines) == {"similarity", "threshold", "source", "decision"}
    saved = np.load(tiny_run / "eval" / "verification" / "holdout_scores.npy")
    assert float(lines["similarity"]) == pytest.approx(saved[0], abs=1e-4)
    assert "FAR 0.001" in lines["source"] and "fewer than 1/FAR" in lines["source"]  # 30 impostor pairs
    assert lines["decision"] in ("same identity", "different identities")
    assert main(["verify", str(tiny_run), str(holdout_files[0]), str(holdout_files[1]), "--threshold", "-1"]) == 0
    assert "same identity" in capsys.readouterr().out


def test_unreadable_images_are_named_and_the_others_written(tiny_run: Path, holdout_files: list[Path],
                                                            tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "in" / "zz_broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "f.npy"
    rc = main(["embed", str(tiny_run), *map(str, holdout_files[:3]), str(bad.parent), "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"failed: {bad}: cannot decode image" in err and "1 of 4 faces failed" in err
    emb, paths, _ = read_embeddings(out)
    assert emb.shape[0] == 3 and paths == [str(p) for p in holdout_files[:3]]
    manifest = json.loads((tmp_path / "f.npy.json").read_text())
    assert manifest["failed"] and str(bad) in manifest["failed"][0]


def test_face_tables_bad_rows_fail_alone(tiny_run: Path, holdout_files: list[Path], tmp_path: Path,
                                         capsys) -> None:  # type: ignore[no-untyped-def]
    a, b, c = holdout_files[:3]
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"path,x1,y1,x2,y2\n{a},4,4,28,28\n{a},2,3,30,31\n{b},100,100,140,150\n{c},1,2,3\n")
    out = tmp_path / "b.csv"
    assert main(["embed", str(tiny_run), str(a), str(b), str(c), "--boxes", str(boxes), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "boxes.csv line 4): box (100, 100, 140, 150): outside the 32x32 image" in err
    assert "boxes.csv line 5): box: expected (x1, y1, x2, y2)" in err
    emb, paths, faces = read_embeddings(out)
    assert paths == [str(a), str(a)] and faces == [0, 1] and emb.shape == (2, 32)
    lms = tmp_path / "lm.csv"
    lms.write_text(f"{a},10,12,22,12,16,18,11,24,21,24\n{b},10,12,22,12,16,18,11,24\n")
    out = tmp_path / "l.npy"
    assert main(["embed", str(tiny_run), str(a), str(b), "--landmarks", str(lms), "--out", str(out)]) == 1
    assert "lm.csv line 2): landmarks: expected 5 (x, y) points" in capsys.readouterr().err
    assert read_embeddings(out)[0].shape == (1, 32)


def test_existing_outputs_are_refused_and_foreign_files_never_replaced(tiny_run: Path, holdout_files: list[Path],
                                                                       tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "f.safetensors"
    assert main(["embed", str(tiny_run), str(holdout_files[0]), "--out", str(out)]) == 0
    assert main(["embed", str(tiny_run), str(holdout_files[0]), "--out", str(out)]) == 2
    assert "--out exists; pass --overwrite" in capsys.readouterr().err
    assert main(["embed", str(tiny_run), str(holdout_files[1]), "--out", str(out), "--overwrite"]) == 0
    assert read_embeddings(out)[1] == [str(holdout_files[1])]
    foreign = tmp_path / "mine.npy"
    np.save(foreign, np.zeros(3))
    before = foreign.read_bytes()
    assert main(["embed", str(tiny_run), str(holdout_files[0]), "--out", str(foreign), "--overwrite"]) == 2
    assert "not written by facebone embed" in capsys.readouterr().err
    assert foreign.read_bytes() == before


def test_run_without_checkpoint_is_a_clear_error(tiny_run: Path, holdout_files: list[Path], tmp_path: Path,
                                                 capsys) -> None:  # type: ignore[no-untyped-def]
    import shutil

    empty = tmp_path / "run"
    shutil.copytree(tiny_run, empty, ignore=shutil.ignore_patterns("*.safetensors"))
    assert main(["embed", str(empty), str(holdout_files[0]), "--out", str(tmp_path / "f.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"facebone: error: {empty / 'checkpoints'}: no checkpoint (the run wrote none)"
    assert not (tmp_path / "f.npy").exists()


def test_onnx_runtime_path_and_a_model_of_another_size(tiny_run: Path, holdout_files: list[Path], tmp_path: Path,
                                                       capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime")
    import torch

    from facebone.model.build import build_backbone
    from facebone.weights.onnx import export_onnx

    graph = tmp_path / "m.onnx"
    assert main(["export", str(tiny_run), "--onnx", str(graph)]) == 0
    capsys.readouterr()
    torch_out, onnx_out = tmp_path / "t.npy", tmp_path / "o.npy"
    files = list(map(str, holdout_files[:6]))
    assert main(["embed", str(tiny_run), *files, "--out", str(torch_out)]) == 0
    assert main(["embed", str(tiny_run), *files, "--onnx", str(graph), "--out", str(onnx_out)]) == 0
    a, b = read_embeddings(torch_out)[0], read_embeddings(onnx_out)[0]
    assert (a * b).sum(1).min() > 0.99999
    assert "ONNX Runtime" in json.loads((tmp_path / "o.npy.json").read_text())["backend"]
    assert main(["verify", str(tiny_run), files[0], files[1], "--onnx", str(graph), "--far", "0.1"]) == 0
    assert "decision" in capsys.readouterr().out
    # deployment without torch: the ONNX path never imports it
    import subprocess
    import sys

    code = ("import sys; from facebone.cli import main; "
            f"rc = main(['verify', {str(tiny_run)!r}, {files[0]!r}, {files[1]!r}, '--onnx', {str(graph)!r}]); "
            "print(rc, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stderr

    other = tmp_path / "other.onnx"
    export_onnx(build_backbone("iresnet18", {"width": 8}, embedding_size=32, image_size=48).eval(), other, 48)
    assert main(["embed", str(tiny_run), *files, "--onnx", str(other), "--out", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"facebone: error: {other}: the ONNX model takes 48x48 images but {tiny_run} embeds 32x32")


def test_import_facebone_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, facebone; assert callable(facebone.load); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_load_a_checkpoint_file_or_an_imported_backbone(tiny_run: Path, holdout_files: list[Path], tmp_path: Path) -> None:
    import torch

    import facebone
    from facebone.errors import ConfigError
    from facebone.model.build import build_backbone
    from facebone.weights.keys import save_backbone

    by_file = facebone.load(tiny_run / "checkpoints" / "last.safetensors")
    assert by_file.facts.run_dir == tiny_run and by_file.threshold(0.1).impostors == 30
    assert np.allclose(by_file.embed(holdout_files[:2]), facebone.load(tiny_run).embed(holdout_files[:2]), atol=1e-6)
    torch.manual_seed(0)
    model = build_backbone("iresnet18", {"width": 8}, embedding_size=24, image_size=32).eval()
    save_backbone(tmp_path / "b.safetensors", model.state_dict(), backbone="iresnet18", options={"width": 8},
                  embedding_size=24, image_size=32)
    bare = facebone.load(tmp_path / "b.safetensors")
    assert bare.embed(holdout_files[0]).shape == (1, 24) and bare.flip
    with pytest.raises(ConfigError, match="not a run directory, so no saved verification scores"):
        bare.verify(holdout_files[0], holdout_files[1])
    assert bare.verify(holdout_files[0], holdout_files[0], threshold=0.5).same
