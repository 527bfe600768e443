"""A generated IJB-style directory through `facebone eval`, with a plugin backbone whose
embedding is known: the one-hot of the colour at the centre of the aligned crop, blended by a
weight from the checkpoint with a constant vector (unloaded weight 0 makes every embedding the
same, so the known answer also proves the checkpoint was loaded)."""
import json
import re
import textwrap

import pytest

from fb_testing import facebone, install_distribution
from test_ijb_evaluators import make_ijb

COLOURNET = '''
import dataclasses
import facebone


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    pass


def build(options, *, embedding_size, image_size, **runtime):
    import torch
    from torch import nn

    class ColourNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding_size = embedding_size
            self.input_size = (image_size, image_size)
            self.weight = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            c = image_size // 2
            pixel = (x[:, 0, c, c].float() * 0.5 + 0.5) * 255.0
            ids = torch.round((pixel - 10.0) / 20.0).long().clamp(0, embedding_size - 1)
            onehot = torch.nn.functional.one_hot(ids, embedding_size).float()
            return onehot * self.weight + (1 - self.weight) * torch.ones_like(onehot)

    return ColourNet()


@facebone.hookimpl
def facebone_backbones(registry):
    registry.add("colournet", build, options=Options, summary="test: one-hot of the centre colour")
'''


@pytest.fixture
def colournet_site(tmp_path):
    site = tmp_path / "site"
    install_distribution(site, "fb-colournet", "1.0", "fb_colournet", COLOURNET, {"colournet": "fb_colournet"})
    return site


def test_ijb_protocols_run_through_facebone_eval(tmp_path, colournet_site):
    import torch
    from safetensors.torch import save_file

    root = tmp_path / "IJBC"
    make_ijb(root)
    checkpoint = tmp_path / "colournet.safetensors"
    save_file({"weight": torch.tensor(1.0)}, str(checkpoint))
    exp = tmp_path / "ijb.toml"
    exp.write_text(textwrap.dedent(f"""
        [experiment]
        name = "ijb_check"
        output_dir = "{tmp_path / 'runs'}"
        [data]
        train = "{tmp_path}"
        [backbone]
        type = "colournet"
        embedding_size = 40
        [embed]
        batch_size = 16
        [[eval]]
        type = "ijb"
        root = "{root}"
        [[eval]]
        type = "ijb_identification"
        root = "{root}"
    """))
    result = facebone("eval", exp, "--checkpoint", checkpoint, env={"PYTHONPATH": str(colournet_site)})
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "ijb_check-eval"
    metrics = json.loads((run / "results.json").read_text())["metrics"]
    # 30 genuine pairs of which 27 match; 3 of 270 impostor pairs match (see make_ijb)
    assert metrics["ijbc/tpr@fpr=1e-2"] == pytest.approx(27 / 30)
    assert metrics["ijbc/tpr@fpr=1e-4"] == 0.0
    fp, good = 3 / 270, 27 / 30
    assert metrics["ijbc/auc"] == pytest.approx(fp * good / 2 + (1 - fp) * (good + 1) / 2, abs=1e-12)
    assert metrics["ijbc_1n/rank1"] == pytest.approx(27 / 30) and metrics["ijbc_1n/rank5"] == 1.0
    for name in ("ijb/ijbc_roc.png", "ijb/ijbc_scores.npy", "ijb/summary.json", "ijb_identification/ijbc_1n_cmc.png"):
        assert (run / "eval" / name).is_file(), name
    assert "ijbc/tpr@fpr=1e-4" in result.stdout


@pytest.mark.parametrize("case", ["nan_landmark", "gallery_without_header", "all_genuine"])
def test_untrustworthy_ijb_meta_exits_2_with_one_line(tmp_path, colournet_site, case):
    """NaN landmarks (a traceback before), a gallery CSV without header (lost its first template
    silently) and an all-genuine pair list (AUC NaN, exit 0) each end `facebone eval` with
    status 2 and one line naming the file and line."""
    import torch
    from safetensors.torch import save_file

    from test_ijb_evaluators import TRUST_CASES

    evaluator_type, file, edit, message = TRUST_CASES[case]
    root = tmp_path / "IJBC"
    make_ijb(root)
    edit(root / "meta" / file)
    checkpoint = tmp_path / "colournet.safetensors"
    save_file({"weight": torch.tensor(1.0)}, str(checkpoint))
    exp = tmp_path / "ijb.toml"
    exp.write_text(textwrap.dedent(f"""
        [experiment]
        name = "ijb_trust"
        output_dir = "{tmp_path / 'runs'}"
        [data]
        train = "{tmp_path}"
        [backbone]
        type = "colournet"
        embedding_size = 40
        [[eval]]
        type = "{evaluator_type}"
        root = "{root}"
        plots = false
    """))
    result = facebone("eval", exp, "--checkpoint", checkpoint, env={"PYTHONPATH": str(colournet_site)})
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if re.search(message, line)]
    assert len(errors) == 1, result.stderr
    assert str(root / "meta" / file) in errors[0]
    assert "nan" not in result.stdout.lower()
