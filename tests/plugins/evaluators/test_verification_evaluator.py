"""The `verification` evaluator end to end: .bin files -> fake embedder -> metrics + artifacts."""
from __future__ import annotations

import io
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from facebone.contracts import EvalContext
from facebone.errors import ConfigError, DataError
from facebone.plugin.options import build_options
from facebone.plugin.registry import Registry


def _png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_bin(path: Path, ids: np.ndarray, issame: np.ndarray) -> None:
    """An InsightFace .bin: (list of encoded images, list of bools). Image k is filled with ids[k]."""
    with open(path, "wb") as fh:
        pickle.dump(([_png(int(i)) for i in ids], [bool(s) for s in issame]), fh, protocol=2)


class OneHotEmbedder:
    """Identity = the pixel value; raw embedding = 3 * one-hot (original) and 4 * one-hot (mirror)."""

    embedding_size = 256
    image_size = 8
    flip = True

    def __init__(self):
        self.calls = 0

    def views(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        ids = images[:, 0, 0, 0].astype(int)
        onehot = np.eye(self.embedding_size, dtype=np.float32)[ids]
        return np.stack([3 * onehot, 4 * onehot])

    def __call__(self, images):
        return self.views(images).sum(0)


@pytest.fixture(autouse=True)
def bin_loader(monkeypatch):
    """Use the data layer's load_bin when merged; until then a minimal stand-in."""
    try:
        import facebone.data.verification_bin  # noqa: F401
    except ImportError:
        from PIL import Image

        def load_bin(path):
            with open(path, "rb") as fh:
                bins, issame = pickle.load(fh)
            images = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in bins])
            return images, np.asarray(issame, bool)

        module = types.ModuleType("facebone.data.verification_bin")
        module.load_bin = load_bin
        monkeypatch.setitem(sys.modules, "facebone.data.verification_bin", module)


def _build(table: dict, data_root):
    from facebone.plugins.evaluators import verification

    registry = Registry("evaluator")
    verification.facebone_evaluators(registry)
    comp = registry.get("verification")
    options, problems = build_options(comp.options, table, "exp.toml [[eval]]")
    assert not problems, problems
    return comp.factory(options, data_root=data_root)


def _pairs(p: int, n_bad: int, seed: int):
    """p pairs, half same; n_bad of the same pairs get two different identities."""
    rng = np.random.default_rng(seed)
    issame = np.arange(p) % 2 == 0
    ids = rng.permutation(200)[: 2 * p % 200 or 200]
    ids = np.resize(ids, 2 * p).reshape(p, 2)
    ids[:, 1] = np.where(issame, ids[:, 0], (ids[:, 0] + 1 + rng.integers(0, 100, p)) % 200)
    bad = np.flatnonzero(issame)[rng.permutation(issame.sum())[:n_bad]]
    ids[bad, 1] = (ids[bad, 0] + 7) % 200
    return ids.reshape(-1), issame


def test_known_accuracy_xnorm_and_artifacts(tmp_path):
    ids, issame = _pairs(200, n_bad=6, seed=0)
    write_bin(tmp_path / "holdout.bin", ids, issame)
    ids2, issame2 = _pairs(100, n_bad=0, seed=1)
    write_bin(tmp_path / "other.bin", ids2, issame2)
    evaluator = _build({"targets": ["holdout", str(tmp_path / "other.bin")], "batch_size": 64}, tmp_path)
    embedder = OneHotEmbedder()
    out = tmp_path / "run" / "eval" / "verification"
    metrics = evaluator(embedder, EvalContext(out_dir=out, name="verification"))
    assert embedder.calls == 7 + 4  # 400 images in chunks of 64, then 200
    # every error is one of the 6 bad same pairs (distance 2, as the different pairs): folds of 20 pairs
    assert metrics["holdout/accuracy"] == pytest.approx(1 - 6 / 200, abs=1e-12)
    assert metrics["other/accuracy"] == 1.0 and metrics["other/accuracy_std"] == 0.0
    assert metrics["holdout/xnorm"] == pytest.approx(3.5, abs=1e-6)
    # FAR jumps from 0 (threshold 2.000) to 1 (2.001): InsightFace interpolates the threshold to
    # 2.000001, which accepts every pair -> VAL 1 at an actual FAR of 1
    assert metrics["holdout/val@far1e-3"] == 1.0
    assert metrics["verification/mean_accuracy"] == pytest.approx((1 - 6 / 200 + 1) / 2, abs=1e-12)
    assert all(isinstance(v, float) for v in metrics.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sets"]["holdout"]["far"] == 1.0
    assert summary["metrics"] == metrics
    scores = np.load(out / summary["sets"]["holdout"]["scores"])
    labels = np.load(out / summary["sets"]["holdout"]["labels"])
    np.testing.assert_array_equal(labels, issame)
    assert np.allclose(scores[issame & (ids[0::2] == ids[1::2])], 1.0)
    assert np.allclose(scores[~issame], 0.0)
    for name in ("holdout", "other"):
        assert (out / f"{name}_roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_set_names_the_file(tmp_path):
    evaluator = _build({"targets": ["lfw"]}, tmp_path)
    with pytest.raises(DataError, match="lfw.bin"):
        evaluator(OneHotEmbedder(), EvalContext(out_dir=tmp_path / "o", name="verification"))


def test_named_target_without_root_is_a_config_error():
    with pytest.raises(ConfigError, match="'lfw'"):
        _build({"targets": ["lfw"]}, None)


def test_options_are_validated():
    from facebone.plugins.evaluators.verification import VerificationOptions

    _, problems = build_options(VerificationOptions, {"targets": []}, "exp.toml [[eval]]")
    assert problems and "targets" in problems[0]
    _, problems = build_options(VerificationOptions, {}, "exp.toml [[eval]]")
    assert "missing required key 'targets'" in problems[0]
