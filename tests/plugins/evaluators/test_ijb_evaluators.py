"""IJB evaluators end to end on a generated IJB-style directory with a fake embedder."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebone.contracts import EvalContext
from facebone.errors import DataError
from facebone.plugin.options import build_options
from facebone.plugin.registry import Registry

N_SUBJECTS = 10
PROBES_PER_SUBJECT = 3
BAD = {0: 1, 7: 2, 21: 3}  # probe template index -> (subject of its images, the partner in the same gallery half)


def _partner(s: int) -> int:
    return (s + 1) % 5 + 5 * (s // 5)


def make_ijb(root: Path, seed: int = 0) -> dict:
    """10 subjects; gallery template 100+s; probe templates 200+k (3 per subject, mixed media);
    probes in BAD hold images of their subject's partner. All gallery x probe pairs."""
    from PIL import Image

    from facebone.data.align import ARCFACE_TEMPLATE

    rng = np.random.default_rng(seed)
    (root / "meta").mkdir(parents=True)
    (root / "loose_crop").mkdir()
    tid_lines, lmk_lines = [], []
    templates = [(100 + s, s, s) for s in range(N_SUBJECTS)]
    for k in range(N_SUBJECTS * PROBES_PER_SUBJECT):
        s = k // PROBES_PER_SUBJECT
        templates.append((200 + k, s, _partner(s) if k in BAD else s))
    n = 0
    for tid, _, shown in templates:
        for j in range(int(rng.integers(1, 4))):
            n += 1
            name = f"{n}.jpg"
            h, w = int(rng.integers(64, 90)), int(rng.integers(60, 80))
            Image.fromarray(np.full((h, w, 3), shown * 20 + 10, np.uint8)).save(root / "loose_crop" / name, quality=100)
            lmk = ARCFACE_TEMPLATE * 0.5 + [rng.uniform(2, 6), rng.uniform(2, 10)] + rng.normal(0, 0.5, (5, 2))
            media = tid * 10 + (j % 2)
            tid_lines.append(f"{name} {tid} {media}")
            lmk_lines.append(" ".join([name] + [f"{v:.3f}" for v in lmk.reshape(-1)] + [f"{rng.uniform(0.5, 1):.4f}"]))
    (root / "meta" / "ijbc_face_tid_mid.txt").write_text("\n".join(tid_lines) + "\n")
    (root / "meta" / "ijbc_name_5pts_score.txt").write_text("\n".join(lmk_lines) + "\n")
    pairs = [f"{100 + g} {200 + k} {int(g == k // PROBES_PER_SUBJECT)}"
             for g in range(N_SUBJECTS) for k in range(N_SUBJECTS * PROBES_PER_SUBJECT)]
    (root / "meta" / "ijbc_template_pair_label.txt").write_text("\n".join(pairs) + "\n")
    header = "TEMPLATE_ID,SUBJECT_ID,FILENAME\n"
    for tag, subjects in (("G1", range(0, 5)), ("G2", range(5, 10))):
        rows = [f"{100 + s},{1000 + s},x.jpg" for s in subjects]
        (root / "meta" / f"ijbc_1N_gallery_{tag}.csv").write_text(header + "\n".join(rows) + "\n")
    rows = [f"{200 + k},{1000 + k // PROBES_PER_SUBJECT},x.jpg" for k in range(N_SUBJECTS * PROBES_PER_SUBJECT)]
    (root / "meta" / "ijbc_1N_probe_mixed.csv").write_text(header + "\n".join(rows) + "\n")
    return {"images": n}


class ColourEmbedder:
    """Identity = the colour at the centre of the aligned crop; raw embedding one-hot (x3, mirror x5)."""

    embedding_size = 40
    image_size = 112
    flip = True

    def views(self, images):
        assert images.shape[1:] == (112, 112, 3)
        ids = (images[:, 56, 56, 0].astype(int) - 10 + 10) // 20
        onehot = np.eye(self.embedding_size, dtype=np.float32)[ids]
        return np.stack([3 * onehot, 5 * onehot])

    def __call__(self, images):
        return self.views(images).sum(0)


def _build(name: str, table: dict):
    from facebone.plugins.evaluators import ijb

    registry = Registry("evaluator")
    ijb.facebone_evaluators(registry)
    comp = registry.get(name)
    options, problems = build_options(comp.options, table, "exp.toml [[eval]]")
    assert not problems, problems
    return comp.factory(options, data_root=None)


@pytest.fixture(scope="module")
def ijb_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("IJB") / "IJBC"
    make_ijb(root)
    return root


def test_ijb_1to1_known_answer(ijb_dir, tmp_path):
    evaluator = _build("ijb", {"root": str(ijb_dir), "batch_size": 16, "workers": 2})
    metrics = evaluator(ColourEmbedder(), EvalContext(out_dir=tmp_path, name="ijb"))
    # 30 genuine pairs, 27 score 1, 3 score 0; 270 impostors, the 3 (partner, bad probe) score 1
    good, fp = 27 / 30, 3 / 270
    for f in ("1e-6", "1e-5", "1e-4", "1e-3"):
        assert metrics[f"ijbc/tpr@fpr={f}"] == 0.0  # the nearest ROC point is (0, 0)
    assert metrics["ijbc/tpr@fpr=1e-2"] == pytest.approx(good)
    assert metrics["ijbc/tpr@fpr=1e-1"] == pytest.approx(good)
    assert metrics["ijbc/auc"] == pytest.approx(fp * good / 2 + (1 - fp) * (good + 1) / 2, abs=1e-12)
    scores = np.load(tmp_path / "ijbc_scores.npy")
    labels = np.load(tmp_path / "ijbc_labels.npy")
    assert len(scores) == 300 and labels.sum() == 30
    assert np.allclose(np.sort(scores)[-30:], 1.0) and np.allclose(np.sort(scores)[:-30], 0.0, atol=1e-7)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["evaluator"] == "ijb" and summary["metrics"] == metrics
    assert (tmp_path / "ijbc_roc.png").stat().st_size > 1000


def test_ijb_identification_known_answer(ijb_dir, tmp_path):
    evaluator = _build("ijb_identification", {"root": str(ijb_dir), "batch_size": 32, "fpirs": [0.1, 0.5]})
    metrics = evaluator(ColourEmbedder(), EvalContext(out_dir=tmp_path, name="ijb_identification"))
    assert metrics["ijbc_1n/rank1"] == pytest.approx(27 / 30)
    assert metrics["ijbc_1n/rank5"] == 1.0 and metrics["ijbc_1n/rank10"] == 1.0
    # G1 has 2 bad mated probes of 15, G2 1 of 15; non-mated top scores are all 0
    assert metrics["ijbc_1n/tpir@fpir=1e-1"] == pytest.approx((13 / 15 + 14 / 15) / 2)
    curve = np.load(tmp_path / "ijbc_1n_cmc.npy")
    assert curve[0] == pytest.approx(0.9) and curve[1] == 1.0
    assert (tmp_path / "ijbc_1n_cmc.png").stat().st_size > 1000


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("file,edit,message", [
    ("ijbc_template_pair_label.txt", None, r"ijbc_template_pair_label.txt: IJB meta file not found"),
    ("ijbc_template_pair_label.txt", lambda ls: ls[:4] + ["101 203"] + ls[5:],
     r"ijbc_template_pair_label.txt:5: expected 3 fields"),
    ("ijbc_template_pair_label.txt", lambda ls: ls[:7] + ["101 999 0"] + ls[8:],
     r"ijbc_template_pair_label.txt:8: template 999 has no image"),
    ("ijbc_template_pair_label.txt", lambda ls: ls[:2] + ["101 20x 0"] + ls[3:],
     r"ijbc_template_pair_label.txt:3: '20x' is not an integer"),
    ("ijbc_name_5pts_score.txt", lambda ls: ls[:3] + [" ".join(ls[3].split()[:-2])] + ls[4:],
     r"ijbc_name_5pts_score.txt:4: expected image name, 10 landmark coordinates and a score"),
    ("ijbc_face_tid_mid.txt", lambda ls: ls[:1] + ["2.jpg 100"] + ls[2:], r"ijbc_face_tid_mid.txt:2: expected"),
    ("ijbc_name_5pts_score.txt", lambda ls: ls[:1] + ["other.jpg" + ls[1][ls[1].index(" "):]] + ls[2:],
     r"ijbc_name_5pts_score.txt:2: image 'other.jpg'"),
])
def test_bad_meta_is_one_clear_error(ijb_dir, tmp_path, file, edit, message):
    root = _copy(ijb_dir, tmp_path / "IJBC")
    path = root / "meta" / file
    if edit is None:
        path.unlink()
    else:
        path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    evaluator = _build("ijb", {"root": str(root)})
    with pytest.raises(DataError, match=message):
        evaluator(ColourEmbedder(), EvalContext(out_dir=tmp_path / "out", name="ijb"))


def test_missing_image_and_probe_template_without_images(ijb_dir, tmp_path):
    root = _copy(ijb_dir, tmp_path / "IJBC")
    (root / "loose_crop" / "3.jpg").unlink()
    with pytest.raises(DataError, match=r"loose_crop/3.jpg: image not found \(listed in ijbc_name_5pts_score.txt line 3\)"):
        _build("ijb", {"root": str(root)})(ColourEmbedder(), EvalContext(out_dir=tmp_path / "o", name="ijb"))
    probe = root / "meta" / "ijbc_1N_probe_mixed.csv"
    probe.write_text(probe.read_text() + "777,1000,x.jpg\n")
    with pytest.raises(DataError, match=r"ijbc_1N_probe_mixed.csv:32: template 777 has no image"):
        _build("ijb_identification", {"root": str(root)})(ColourEmbedder(), EvalContext(out_dir=tmp_path / "o",
                                                                                          name="x"))


def _edit_line(path: Path, number: int, edit) -> None:  # type: ignore[no-untyped-def]
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


def _set_field(index: int, value: str):  # type: ignore[no-untyped-def]
    def edit(line: str) -> str:
        fields = line.split()
        fields[index] = value
        return " ".join(fields)

    return edit


def _all_labels(value: str):  # type: ignore[no-untyped-def]
    def edit(path: Path) -> None:
        path.write_text("".join(" ".join(ln.split()[:2] + [value]) + "\n" for ln in path.read_text().splitlines()))

    return edit


TRUST_CASES = {
    # NaN / Inf in the landmark file: SVD raised LinAlgError (a traceback) before
    "nan_landmark": ("ijb", "ijbc_name_5pts_score.txt", lambda p: _edit_line(p, 4, _set_field(3, "nan")),
                     r"ijbc_name_5pts_score.txt:4: landmark coordinate 3 of image '4.jpg' is 'nan', not a finite number"),
    "inf_score": ("ijb", "ijbc_name_5pts_score.txt", lambda p: _edit_line(p, 2, _set_field(11, "inf")),
                  r"ijbc_name_5pts_score.txt:2: the detector score of image '2.jpg' is 'inf', not a finite number"),
    "degenerate_landmarks": ("ijb", "ijbc_name_5pts_score.txt",
                             lambda p: _edit_line(p, 5, lambda ln: " ".join([ln.split()[0]] + ["7.5"] * 10 + ["0.9"])),
                             r"ijbc_name_5pts_score.txt:5: the landmarks of image '5.jpg' are degenerate"),
    # a gallery CSV without its header row lost its first template silently before
    "gallery_without_header": ("ijb_identification", "ijbc_1N_gallery_G1.csv",
                               lambda p: p.write_text("\n".join(p.read_text().splitlines()[1:]) + "\n"),
                               r"ijbc_1N_gallery_G1.csv:1: expected the header row \(TEMPLATE_ID,SUBJECT_ID,...\), "
                               r"found a template '100,1000,x.jpg'"),
    # an all-genuine pair list gave AUC NaN with exit status 0 before
    "all_genuine": ("ijb", "ijbc_template_pair_label.txt", _all_labels("1"),
                    r"ijbc_template_pair_label.txt: all 300 pairs are genuine \(label 1\); a ROC, TPR at FPR and AUC "
                    r"need impostor pairs \(label 0\) too"),
    "all_impostor": ("ijb", "ijbc_template_pair_label.txt", _all_labels("0"),
                     r"ijbc_template_pair_label.txt: all 300 pairs are impostor \(label 0\)"),
}


@pytest.mark.parametrize("case", TRUST_CASES)
def test_untrustworthy_meta_is_refused_naming_file_and_line(ijb_dir, tmp_path, case):
    evaluator_type, file, edit, message = TRUST_CASES[case]
    root = _copy(ijb_dir, tmp_path / "IJBC")
    edit(root / "meta" / file)
    evaluator = _build(evaluator_type, {"root": str(root)})
    with pytest.raises(DataError, match=message) as info:
        evaluator(ColourEmbedder(), EvalContext(out_dir=tmp_path / "out", name="x"))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out" / "summary.json").exists()
