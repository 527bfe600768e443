"""The quickstart as the README runs it (slow: about 1.5 minutes on an idle 2-core CPU)."""
import json
import shutil

import pytest

from fb_testing import ROOT, facebone


@pytest.mark.slow
def test_quickstart_learns_held_out_identities(tmp_path):
    exp = tmp_path / "quickstart.toml"
    shutil.copy(ROOT / "experiments" / "quickstart.toml", exp)
    result = facebone("run", exp, "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "runs" / "quickstart" / "results.json").read_text())
    assert results["metrics"]["holdout/accuracy"] >= 0.90
    # the trained model in use: `facebone embed` on the held-out image files gives the pair scores
    # `facebone eval` saved, and `facebone verify` decides at the run's threshold
    import numpy as np

    from facebone.data.verification_bin import load_bin_raw
    from facebone.predict.outputs import read_embeddings

    run = tmp_path / "runs" / "quickstart"
    bins, _ = load_bin_raw(tmp_path / "data" / "quickstart" / "holdout.bin")
    images = tmp_path / "holdout"
    images.mkdir()
    for i, data in enumerate(bins):
        (images / f"{i:05d}.jpg").write_bytes(bytes(data))
    result = facebone("embed", run, images, "--out", tmp_path / "feats.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    emb = read_embeddings(tmp_path / "feats.npy")[0].astype(np.float64)
    saved = np.load(run / "eval" / "verification" / "holdout_scores.npy")
    assert np.abs((emb[0::2] * emb[1::2]).sum(1) - saved).max() <= 1e-5
    result = facebone("verify", run, images / "00000.jpg", images / "00001.jpg", cwd=tmp_path)
    assert result.returncode == 0 and "threshold" in result.stdout and "FAR 0.001" in result.stdout, result.stderr
