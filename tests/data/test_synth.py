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
