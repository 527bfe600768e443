"""pair_list: known answers with a transparent embedder, clear errors, and a run through facebone."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facebone.cli import main
from facebone.contracts import EvalContext
from facebone.errors import DataError
from facebone.testing import check_options
from facebone_example_evaluator import PairListOptions, build_pair_list


def write_pairs(root: Path, rows: list[str]) -> Path:
    """Images whose colour is their identity (0..3), and a CSV of pairs over them."""
    for ident in range(4):
        for k in range(2):
            colour = np.zeros((32, 32, 3), np.uint8)
            colour[..., ident % 3] = 80 + 60 * (ident // 3) + k
            Image.fromarray(colour).save(root / f"id{ident}_{k}.png")
    path = root / "pairs.csv"
    path.write_text("path1,path2,same\n" + "\n".join(rows) + "\n")
    return path


class MeanColour:
    """Embeds an image as its mean colour: images of one identity point the same way."""

    embedding_size, image_size, flip = 3, 32, False

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1, 3).mean(axis=1).astype(np.float32)


def test_options_are_documented() -> None:
    check_options("evaluator", "pair_list")


def test_known_answers(tmp_path: Path) -> None:
    rows = [f"id{i}_0.png,id{i}_1.png,1" for i in range(4)] + ["id0_0.png,id1_0.png,0", "id1_1.png,id2_0.png,0",
                                                               "id0_1.png,id3_0.png,0"]
    csv = write_pairs(tmp_path, rows)
    out = tmp_path / "out"
    out.mkdir()
    metrics = build_pair_list(PairListOptions(csv=str(csv), fars=(0.1,)))(MeanColour(), EvalContext(out, "mine"))
    # genuine pairs have cosine 1, so has the impostor pair id0/id3 (one colour channel, other brightness)
    scores = np.load(out / "scores.npy")
    assert np.allclose(scores[:4], 1.0) and np.allclose(scores[4:6], 0.0) and np.isclose(scores[6], 1.0)
    assert metrics["mine/auc"] == pytest.approx(1 - 0.5 / 3, abs=1e-6)   # one tie in 12 genuine-impostor pairs
    assert set(metrics) == {"mine/tar@far=1e-1", "mine/auc", "mine/eer"}


@pytest.mark.parametrize("content, message", [
    ("a,b,c\n", "header"),
    ("path1,path2,same\nid0_0.png,id0_1.png,yes\n", "line 2"),
    ("path1,path2,same\nid0_0.png,id0_1.png,1\n", "both genuine"),
    ("path1,path2,same\nid0_0.png,missing.png,1\nid0_0.png,id1_0.png,0\n", "missing.png"),
])
def test_bad_lists_name_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    write_pairs(tmp_path, [])
    (tmp_path / "pairs.csv").write_text(content)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match=message) as info:
        build_pair_list(PairListOptions(csv=str(tmp_path / "pairs.csv")))(MeanColour(), EvalContext(out, "x"))
    assert "pairs.csv" in str(info.value) and "\n" not in str(info.value)


def test_runs_after_training_through_facebone(tmp_path: Path) -> None:
    csv = write_pairs(tmp_path, [f"id{i}_0.png,id{i}_1.png,1" for i in range(4)] + ["id0_0.png,id1_0.png,0",
                                                                                    "id2_0.png,id3_1.png,0"])
    exp = tmp_path / "exp.toml"
    exp.write_text(f"""
[experiment]
output_dir = "{tmp_path / 'runs'}"
[data]
train = "{tmp_path / 'data'}"
image_size = 32
[data.synth]
identities = 20
images_per_identity = 8
holdout_identities = 10
pairs = 40
[backbone]
type = "iresnet18"
width = 8
embedding_size = 32
[train]
batch_size = 32
epochs = 1
max_steps = 3
[[eval]]
type = "pair_list"
csv = "{csv}"
""")
    assert main(["run", str(exp), "--no-progress"]) == 0
    results = (tmp_path / "runs" / "exp" / "results.json").read_text()
    assert "pair_list/auc" in results
    assert main(["compare", str(tmp_path / "runs" / "exp"), "--out", str(tmp_path / "roc.png")]) == 0
