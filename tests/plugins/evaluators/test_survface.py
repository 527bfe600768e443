"""``survface``: QMUL-SurvFace open-set 1:N on a generated directory of the published layout
(.mat lists written with scipy), with answers worked out by hand.

Faces are uniform images whose colour encodes their embedding (the fake embedder reads it
back), of several sizes. Gallery: id 9 = (100, 0, 0) and (0, 20, 0) (raw mean (50, 10, 0)),
id 5 = (0, 0, 100), id 2 = (0, 100, 0). Mated probes: 5 -> (0, 0, 100), 2 -> (0, 40, 100)
(closest to 5: a rank-2 hit at 0.371), 9 -> (50, 10, 0), 2 -> (0, 100, 30) (0.958).
Unmated: (100, 100, 0) (top 0.832), (-100, 0, 0) (top 0), (0, 30, -100) (top 0.287).
FPIR steps 2/3 -> 1/3 -> 0 at t = 0.287 and 0.832; TPIR20 is 1 until 0.371, then 3/4:
AUC = 1/3 * 1 + 1/3 * 3/4 = 7/12; TPIR20@0.3 = @0.2 = 1 (nearest FPIR 1/3), @0.1 = @0.01 = 3/4.
The .mat files list identities in different first-appearance orders (the original's
separate re-indexing would mismatch them); ids are matched by their raw values here.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facebone.contracts import EvalContext
from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options

scipy_io = pytest.importorskip("scipy.io")


class ColourEmbedder:
    """Embedding = mean colour - 128 (3-D); records the sizes it is given."""

    embedding_size, image_size, flip = 3, 112, True

    def __init__(self):
        self.sizes: list[tuple[int, int]] = []

    def views(self, images, branch=None):  # type: ignore[no-untyped-def]
        self.sizes += [img.shape[:2] for img in images]
        e = np.stack([np.asarray(img, np.float32).mean(axis=(0, 1)) - 128.0 for img in images])
        return np.stack([e, e])  # a uniform face is its own mirror


GALLERY = [("g1.png", 9, (100, 0, 0), (12, 9)), ("g2.png", 5, (0, 0, 100), (30, 24)),
           ("g3.png", 9, (0, 20, 0), (7, 7)), ("g4.png", 2, (0, 100, 0), (16, 16))]
MATED = [("k1.png", 5, (0, 0, 100), (14, 11)), ("k2.png", 2, (0, 40, 100), (5, 8)),
         ("k3.png", 9, (50, 10, 0), (40, 33)), ("k4.png", 2, (0, 100, 30), (20, 20))]
UNMATED = [("u1.png", (100, 100, 0), (9, 9)), ("u2.png", (-100, 0, 0), (25, 18)), ("u3.png", (0, 30, -100), (6, 6))]


def face(code, size) -> Image.Image:  # type: ignore[no-untyped-def]
    return Image.fromarray(np.full((*size, 3), np.array(code) + 128, dtype=np.uint8))


def make_survface(root):  # type: ignore[no-untyped-def]
    base = root / "Face_Identification_Test_Set"
    for part, items in (("gallery", GALLERY), ("mated_probe", MATED)):
        (base / part).mkdir(parents=True)
        for name, _, code, size in items:
            face(code, size).save(base / part / name)
        files = np.empty((len(items), 1), dtype=object)
        files[:, 0] = [name for name, *_ in items]
        ids = np.array([[float(i)] for _, i, *_ in items])
        scipy_io.savemat(str(base / f"{part}_img_ID_pairs.mat"), {f"{part}_set": files, f"{part}_ids": ids})
    (base / "unmated_probe").mkdir()
    for name, code, size in UNMATED:
        face(code, size).save(base / "unmated_probe" / name)


def evaluator(root, **options):  # type: ignore[no-untyped-def]
    comp = load_plugins().get("evaluator", "survface")
    opts, problems = build_options(comp.options, {"root": str(root), **options}, "survface")
    assert not problems
    return comp.factory(opts)


@pytest.mark.parametrize("rank, expected", [
    (20, {"auc": 7 / 12, "rank1": 0.75, "tpir20@fpir=0.3": 1.0, "tpir20@fpir=0.2": 1.0, "tpir20@fpir=0.1": 0.75,
          "tpir20@fpir=0.01": 0.75}),
    (1, {"auc": 0.5, "rank1": 0.75, "tpir1@fpir=0.3": 0.75, "tpir1@fpir=0.01": 0.75}),
])
def test_known_answers(tmp_path, rank, expected):  # type: ignore[no-untyped-def]
    make_survface(tmp_path / "SurvFace")
    emb = ColourEmbedder()
    ctx = EvalContext(out_dir=tmp_path / "out", name="survface")
    ctx.out_dir.mkdir()
    metrics = evaluator(tmp_path / "SurvFace", rank=rank)(emb, ctx)
    for key, value in expected.items():
        assert metrics[f"survface/{key}"] == pytest.approx(value, abs=1e-9), key
    # every face reached the embedder at its native size
    assert emb.sizes == [s for *_, s in GALLERY] + [s for *_, s in MATED] + [s for *_, s in UNMATED]
    assert (ctx.out_dir / "summary.json").is_file() and (ctx.out_dir / "survface_tpir.npy").is_file()


def test_missing_layout_is_a_clear_error(tmp_path):  # type: ignore[no-untyped-def]
    from facebone.errors import DataError

    ctx = EvalContext(out_dir=tmp_path, name="survface")
    with pytest.raises(DataError, match="gallery_img_ID_pairs.mat: SurvFace list not found"):
        evaluator(tmp_path)(ColourEmbedder(), ctx)
