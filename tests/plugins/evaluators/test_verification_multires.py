"""``verification_multires``: each side of the pairs degraded to its own resolution, embedded by its
own path (BTNet's <id1, id2> protocol), 10-fold flip-sum accuracy."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facebone.contracts import EvalContext
from facebone.data.verification_bin import write_bin
from facebone.metrics.verification import evaluate_verification
from facebone.plugin.discovery import load_plugins
from facebone.plugin.options import build_options


class PoolEmbedder:
    """Raw embedding = the image average-pooled to 4x4 (48-D), minus 0.5; mirrors: the flipped image."""

    embedding_size, image_size, flip = 48, 32, True

    def __init__(self):
        self.calls: list[tuple[tuple[int, ...], int | None]] = []

    @staticmethod
    def embed(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
        return (F.adaptive_avg_pool2d(x, 4).flatten(1) - 0.5).numpy()

    def views(self, images, branch=None):  # type: ignore[no-untyped-def]
        self.calls.append((tuple(np.shape(images)[1:3]), branch))
        return np.stack([self.embed(images), self.embed(np.asarray(images)[:, :, ::-1])])


def make_bin(path):  # type: ignore[no-untyped-def]
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (10, 32, 32, 3)).astype(np.float32)
    pairs, issame = [], []
    for i in range(40):
        a = rng.integers(0, 10)
        same = i % 2 == 0
        b = a if same else (a + 1 + rng.integers(0, 9)) % 10
        for ident in (a, b):
            pairs.append(np.clip(base[ident] + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8))
        issame.append(same)
    encoded = []
    for img in pairs:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        encoded.append(buf.getvalue())
    write_bin(path, encoded, issame)
    return np.stack(pairs), np.array(issame)


def evaluator(tmp_path, **options):  # type: ignore[no-untyped-def]
    comp = load_plugins().get("evaluator", "verification_multires")
    opts, problems = build_options(comp.options, {"targets": ["pairs"], "root": str(tmp_path), **options}, "vm")
    assert not problems, problems
    return comp.factory(opts, data_root=None)


def degrade(images: np.ndarray, size: int, up: int | None = None) -> np.ndarray:
    """OpenCV-style bilinear (no antialias), rounded to uint8, written independently of the evaluator."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    for s in [size] + ([up] if up else []):
        x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False).round().clamp(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("options, label, sides", [
    ({"reso1": 32, "reso2": 8, "model1": "trunk"}, "32@trunk&8", ((32, None, 32), (8, None, None))),
    ({"reso1": 8, "reso2": 8, "upsample1": True, "upsample2": True}, "8up&8up", ((8, 32, None), (8, 32, None))),
    ({"reso1": 4, "reso2": 8, "model2": "branch"}, "4&8@branch", ((4, None, None), (8, None, 8))),
])
def test_each_side_is_degraded_and_routed_as_asked(tmp_path, options, label, sides):  # type: ignore[no-untyped-def]
    images, issame = make_bin(tmp_path / "pairs.bin")
    emb = PoolEmbedder()
    ctx = EvalContext(out_dir=tmp_path / "out", name="vm")
    ctx.out_dir.mkdir()
    metrics = evaluator(tmp_path, **options)(emb, ctx)
    feats = []
    for (reso, up, branch), side_images in zip(sides, (images[0::2], images[1::2])):
        faces = degrade(side_images, reso, up)
        assert (faces.shape[1:3], branch) in emb.calls
        feats.append(emb.embed(faces) + emb.embed(faces[:, :, ::-1]))
    joint = np.empty((80, 48))
    joint[0::2], joint[1::2] = feats
    want = evaluate_verification(joint, issame, n_folds=10)
    assert metrics[f"pairs/{label}/accuracy"] == pytest.approx(want.accuracy, abs=1e-12)
    assert metrics[f"pairs/{label}/accuracy"] > 0.5
    assert (ctx.out_dir / f"pairs_{label.replace('&', '_')}_scores.npy").is_file()


def test_contradictory_sides_are_refused():
    comp = load_plugins().get("evaluator", "verification_multires")
    _, problems = build_options(comp.options, {"targets": ["x"], "reso2": 14, "upsample2": True,
                                               "model2": "branch"}, "exp.toml [[eval]] #1")
    assert problems and "model2 = 'branch' feeds the 14x14 face to its branch" in problems[0]
