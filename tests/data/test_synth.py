"""Synthetic face-like identities: formats, held-out pairs, reuse, determinism, nuisance."""
from __future__ import annotations

import json
import time

import numpy as np

from facebone.data import generate_synthetic, load_bin, open_pack
from facebone.data.synth import render, sample_identities, sample_nuisance

SPEC = dict(identities=6, images_per_identity=4, holdout_identities=4, pairs=20, image_size=24, seed=5)


def test_writes_insightface_pack_and_holdout_bin(tmp_path):
    info = generate_synthetic(tmp_path, progress=False, **SPEC)
    assert info["reused"] is False
    p = open_pack(tmp_path)
    assert p.layout == "insightface" and len(p) == 24 and p.num_classes == 6 and p.image_size == (24, 24)
    assert np.bincount(p.labels).tolist() == [4] * 6
    images, same = load_bin(tmp_path / "holdout.bin")
    assert images.shape == (40, 24, 24, 3) and same.sum() == 10
    assert {k: v for k, v in json.loads((tmp_path / "synth.json").read_text()).items() if k in SPEC} == SPEC


def test_reuse_same_spec_and_regenerate_other(tmp_path):
    generate_synthetic(tmp_path, progress=False, **SPEC)
    before = (tmp_path / "train.rec").read_bytes()
    t = time.perf_counter()
    assert generate_synthetic(tmp_path, progress=False, **SPEC)["reused"] is True
    assert time.perf_counter() - t < 0.5
    other = generate_synthetic(tmp_path / "o", progress=False, **SPEC)
    assert other["reused"] is False and (tmp_path / "o" / "train.rec").read_bytes() == before  # deterministic
    assert generate_synthetic(tmp_path, progress=False, **{**SPEC, "seed": 6})["reused"] is False
    assert (tmp_path / "train.rec").read_bytes() != before


def test_identity_beats_nuisance_but_nuisance_is_real():
    rng = np.random.default_rng(0)
    idp = sample_identities(rng, 40)
    take = lambda idx: {k: v[idx] for k, v in idp.items()}  # noqa: E731
    ids = np.repeat(np.arange(40), 2)
    imgs = render(take(ids), sample_nuisance(rng, 80), 32).reshape(40, 2, -1).astype(np.float32)
    same_diff = np.abs(imgs[:, 0] - imgs[:, 1]).mean()
    assert same_diff > 8  # two images of one identity differ visibly (pose, light, noise, background)
    clean = {k: np.zeros_like(v) for k, v in sample_nuisance(rng, 80).items()}
    clean.update(scale=np.ones(80, np.float32), bright=np.ones(80, np.float32), blink=np.ones(80, np.float32),
                 bg=np.full((80, 3), 0.5, np.float32))
    c = render(take(ids), clean, 32).reshape(40, 2, -1).astype(np.float32)
    assert np.abs(c[:, 0] - c[:, 1]).max() == 0  # without nuisance, identity alone fixes the image
    assert np.abs(c[:-1, 0] - c[1:, 0]).mean() > 10  # and identities differ


def test_generation_writes_only_into_empty_dirs_or_over_its_own_output(tmp_path):
    import pytest

    from facebone.errors import DataError

    real = tmp_path / "real"
    real.mkdir()
    (real / "train.rec").write_bytes(b"someone's records")
    with pytest.raises(DataError, match="real: is not empty and holds no synthetic data of facebone's"):
        generate_synthetic(real, progress=False, **SPEC)
    assert (real / "train.rec").read_bytes() == b"someone's records" and len(list(real.iterdir())) == 1
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="exists and is not a directory"):
        generate_synthetic(tmp_path / "file", progress=False, **SPEC)
    (tmp_path / "empty").mkdir()
    assert generate_synthetic(tmp_path / "empty", progress=False, **SPEC)["reused"] is False
    own = tmp_path / "empty"
    (own / "lfw.bin").write_bytes(b"the user's own set, kept")
    assert generate_synthetic(own, progress=False, **{**SPEC, "seed": 9})["reused"] is False  # over its own output
    assert (own / "lfw.bin").read_bytes() == b"the user's own set, kept"
    (own / "train.idx").write_text("0\t0\n")  # replaced by someone: no longer the file it wrote
    with pytest.raises(DataError, match="train.idx is not the file synthetic generation wrote there"):
        generate_synthetic(own, progress=False, **{**SPEC, "seed": 10})
    assert (own / "train.idx").read_text() == "0\t0\n"
    legacy = tmp_path / "legacy"  # a marker from before sizes were recorded
    generate_synthetic(legacy, progress=False, **SPEC)
    meta = json.loads((legacy / "synth.json").read_text())
    meta.pop("files")
    (legacy / "synth.json").write_text(json.dumps(meta))
    assert generate_synthetic(legacy, progress=False, **{**SPEC, "seed": 7})["reused"] is False
    (legacy / "mine.txt").write_text("x")
    meta = json.loads((legacy / "synth.json").read_text())
    meta.pop("files")
    (legacy / "synth.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="holds 'mine.txt', which synthetic generation did not write"):
        generate_synthetic(legacy, progress=False, **{**SPEC, "seed": 8})
