"""1:N identification (rank-k, TPIR at FPIR with G1/G2) equals InsightFace's ijb_evals loops."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.preprocessing import normalize

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import insightface_reference as ref  # noqa: E402

from facebone.metrics import identification as I  # noqa: E402


@pytest.mark.parametrize("noise,seed", [(1.0, 0), (3.0, 1), (0.2, 2)])
def test_g1g2_equals_reference(noise, seed):
    rng = np.random.default_rng(seed)
    d, ns = 32, 300
    centres = rng.normal(size=(ns, d))
    g1, g2 = np.arange(0, 150) * 7, np.arange(150, 300) * 7

    def feats(ids, s):
        return normalize(centres[ids // 7] + s * rng.normal(size=(len(ids), d)))

    pid = rng.integers(0, ns, 1500) * 7
    pf, g1f, g2f = feats(pid, noise), feats(g1, 0.5), feats(g2, 0.5)
    fpirs = [1e-3, 1e-2, 1e-1, 0.3]
    want = ref.ref_identification_g1g2(pf, pid, g1f, g1, g2f, g2, fpirs)
    got, results = I.identify_g1g2(pf, pid, g1f, g1, g2f, g2, fpirs=fpirs)
    assert got["rank1"] == want["top1"] and got["rank5"] == want["top5"] and got["rank10"] == want["top10"]
    np.testing.assert_array_equal([got[f"tpir@fpir={k}"] for k in ("1e-3", "1e-2", "1e-1", "0.3")], want["tpir"])
    curve = I.cmc(results, 20)
    assert curve[0] == got["rank1"] and curve[4] == got["rank5"] and curve[9] == got["rank10"]
    assert np.all(np.diff(curve) >= 0)
    # G1/G2 split: each probe is mated in exactly one gallery
    assert len(results[0].ranks) + len(results[1].ranks) == len(pid)


def test_known_answer_perfect_gallery():
    ids = np.arange(10)
    feats = np.eye(10)
    got, _ = I.identify_g1g2(feats, ids, feats[:5], ids[:5], feats[5:], ids[5:], fpirs=[0.2])
    assert got["rank1"] == 1.0
    # non-mated probes score 0 against the other gallery; mates score 1 > 0
    assert got["tpir@fpir=0.2"] == 1.0
