"""IJB with BTNet's per-view resolutions (two-view sum, research/btnet.md §3.2) and its 1:N on the
union of G1 and G2 with the per-probe "FPIR" (§3.3), on the generated IJB directory of
test_ijb_evaluators.py."""
from __future__ import annotations

import numpy as np
import pytest

from facebone.contracts import EvalContext
from facebone.metrics.union_identification import union_identification
from facebone.plugin.options import build_options
from facebone.plugin.registry import Registry

from test_ijb_evaluators import make_ijb


class SizedColourEmbedder:
    """Identity = the colour at the centre of the (possibly degraded) crop; one-hot x3, mirror x5.
    Records the size and the path of every call."""

    embedding_size, image_size, flip = 40, 112, True

    def __init__(self):
        self.calls: list[tuple[int, int | None]] = []

    def views(self, images, branch=None):  # type: ignore[no-untyped-def]
        side = images.shape[1]
        self.calls.append((side, branch))
        ids = images[:, side // 2, side // 2, 0].astype(int) // 20  # pixel value = 20 * subject + 10
        onehot = np.eye(self.embedding_size, dtype=np.float32)[ids]
        return np.stack([3 * onehot, 5 * onehot])


def build(name: str, table: dict):  # type: ignore[no-untyped-def]
    from facebone.plugins.evaluators import ijb

    registry = Registry("evaluator")
    ijb.facebone_evaluators(registry)
    comp = registry.get(name)
    options, problems = build_options(comp.options, table, "exp.toml [[eval]]")
    assert not problems, problems
    return comp.factory(options, data_root=None)


@pytest.fixture(scope="module")
def ijb_dir(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("IJB") / "IJBC"
    make_ijb(root)
    return root


def test_two_views_at_their_resolutions(ijb_dir, tmp_path):  # type: ignore[no-untyped-def]
    emb = SizedColourEmbedder()
    evaluator = build("ijb", {"root": str(ijb_dir), "batch_size": 64, "workers": 2, "resolutions": [112, 7],
                              "models": ["trunk", "auto"]})
    metrics = evaluator(emb, EvalContext(out_dir=tmp_path, name="ijb"))
    assert {c for c in emb.calls} == {(112, 112), (7, None)}  # view 1 forced to the trunk, view 2 routed at 7
    assert metrics["ijbc/tpr@fpr=1e-2"] == pytest.approx(27 / 30)  # the same identities as at full resolution


def test_union_gallery_metrics_are_labelled_apart(ijb_dir, tmp_path):  # type: ignore[no-untyped-def]
    evaluator = build("ijb_identification", {"root": str(ijb_dir), "batch_size": 64, "fpirs": [0.1, 0.2],
                                             "union_gallery": True, "resolutions": [14, 14],
                                             "upsample": [True, True]})
    emb = SizedColourEmbedder()
    metrics = evaluator(emb, EvalContext(out_dir=tmp_path, name="ijb_identification"))
    assert {c for c in emb.calls} == {(112, None)}  # degraded to 14 and upsampled back
    assert metrics["ijbc_1n/rank1"] == pytest.approx(27 / 30)  # the standard metrics are still there
    # 3 probes show their partner: mated score 0, one non-mated score 1 each; every other non-mated score is 0.
    # "FAR" 0.1 -> k = 3 -> threshold 1 -> no probe above it; 0.2 -> k = 6 -> threshold 0 -> 27 of 30.
    assert metrics["ijbc_1n/union/rank1"] == pytest.approx(27 / 30)
    assert metrics["ijbc_1n/union/rank5"] == 1.0
    assert metrics["ijbc_1n/union/tpir@far_per_probe=1e-1"] == 0.0
    assert metrics["ijbc_1n/union/tpir@far_per_probe=0.2"] == pytest.approx(27 / 30)


def test_union_identification_against_a_direct_computation():
    rng = np.random.default_rng(3)
    gallery = rng.normal(size=(50, 8))
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    gids = rng.permutation(50) + 100
    pids = rng.choice(gids, 300)
    probes = gallery[[int(np.flatnonzero(gids == p)[0]) for p in pids]] + rng.normal(0, 0.6, (300, 8))
    got = union_identification(probes, pids, gallery, gids, fars=(0.01, 0.1), ranks=(1, 5), chunk=64)
    sim = probes @ gallery.T
    mate = np.array([int(np.flatnonzero(gids == p)[0]) for p in pids])
    pos = sim[np.arange(300), mate]
    top = np.argsort(-sim, axis=1)
    assert got["rank1"] == pytest.approx(np.mean(top[:, 0] == mate))
    assert got["rank5"] == pytest.approx(np.mean([m in t[:5] for m, t in zip(mate, top)]))
    neg = sim.copy()
    neg[np.arange(300), mate] = -2.0
    neg = np.sort(neg[neg > -2.0])[::-1]
    for far, key in ((0.01, "1e-2"), (0.1, "1e-1")):
        th = neg[int(np.ceil(300 * far)) - 1]
        assert got[f"threshold@far_per_probe={key}"] == pytest.approx(th)
        assert got[f"tpir@far_per_probe={key}"] == pytest.approx(np.mean(pos > th))
