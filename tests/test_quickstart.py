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
