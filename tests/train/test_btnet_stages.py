"""BTNet's stage 2 on the engine: a trunk run initialises a btnet (every branch from the trunk, the
backbone's ``complete_state_dict``), a non-trunk source is refused when the experiment is checked,
and the objective ``btnet_distill`` trains the branches against the frozen trunk in the loop."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facebone.data import generate_synthetic
from facebone.errors import DataError
from facebone.experiment import tomlio
from facebone.experiment.config import validate
from facebone.plugin.discovery import load_plugins
from facebone.train.loop import Trainer
from facebone.train.stages import preflight
from facebone.weights.checkpoint import read_checkpoint

PLUGINS = load_plugins()
FREEZE = ["backbone.conv1", "backbone.bn1", "backbone.prelu", "backbone.layer*", "backbone.bn2", "backbone.fc",
          "backbone.features"]


def raw(root: Path, name: str, backbone: dict, **extra) -> dict:  # type: ignore[no-untyped-def]
    out = {"experiment": {"name": name, "seed": 3, "output_dir": str(root / "runs")},
           "data": {"train": str(root / "data"), "image_size": 32},
           "backbone": {"embedding_size": 16, "width": 8, **backbone},
           "head": {"type": "cosface", "scale": 16.0},
           "train": {"batch_size": 16, "epochs": 1, "max_steps": 2, "lr": 0.05, "log_every": 1}}
    for table, values in extra.items():
        out.setdefault(table, {}).update(values)
    return out


@pytest.fixture(scope="module")
def trunk_run(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("btnet_stages")
    generate_synthetic(root / "data", identities=8, images_per_identity=4, holdout_identities=4, pairs=20,
                       image_size=32, progress=False)
    exp = validate(raw(root, "trunk", {"type": "iresnet18"}), source="trunk.toml", plugins=PLUGINS)
    run = root / "runs" / "trunk"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(tomlio.dumps(exp.resolved()))  # as `facebone run` writes it
    Trainer(exp, run, log=lambda line: None, progress=False).fit()
    return root, run


def stage2(root: Path, run: Path, **backbone) -> dict:  # type: ignore[no-untyped-def]
    return raw(root, "branches", {"type": "btnet18", "branches": [16, 8], **backbone},
               train={"init_from": str(run), "classifier_from": str(run), "classifier_frozen": True,
                      "freeze": FREEZE, "freeze_bn": "update"},
               objective={"type": "btnet_distill", "teacher": str(run)})


def test_a_trunk_run_initialises_every_branch_and_a_foreign_one_is_refused(trunk_run):  # type: ignore[no-untyped-def]
    root, run = trunk_run
    exp = validate(stage2(root, run), source="branches.toml", plugins=PLUGINS)
    summary = preflight(exp, num_classes=8)  # what `facebone check` runs: the trunk fits, branches included
    assert summary.trainable > 0
    wide = validate(stage2(root, run, width=16), source="branches.toml", plugins=PLUGINS)
    with pytest.raises(DataError, match=r"does not fit backbone btnet18: .* with another shape"):
        preflight(wide, num_classes=8)
    deeper = validate({**stage2(root, run), "backbone": {"type": "btnet34", "width": 8, "embedding_size": 16,
                                                         "branches": [16, 8]}}, source="b.toml", plugins=PLUGINS)
    with pytest.raises(DataError, match="does not fit backbone btnet34"):
        preflight(deeper, num_classes=8)


def test_the_loop_trains_only_the_branches(trunk_run):  # type: ignore[no-untyped-def]
    root, run = trunk_run
    exp = validate(stage2(root, run), source="branches.toml", plugins=PLUGINS)
    out = root / "runs" / "branches"
    out.mkdir()
    (out / "config.toml").write_text(tomlio.dumps(exp.resolved()))
    lines: list[str] = []
    Trainer(exp, out, log=lines.append, progress=False).fit()
    trunk, _ = read_checkpoint(run / "checkpoints" / "last.safetensors")
    got, _ = read_checkpoint(out / "checkpoints" / "last.safetensors")
    for key, value in trunk.items():
        if key.startswith("model.backbone.") and "running" not in key and "num_batches" not in key:
            assert torch.equal(got[key], value), key  # the trunk is frozen (its BN is not even run)
    start = trunk["model.backbone.layer1.0.conv1.weight"]
    assert not torch.equal(got["model.backbone.branches.16.layer1.0.conv1.weight"], start)  # a branch learnt
    assert torch.equal(got["classifier.weight"], trunk["classifier.weight"])  # inherited and frozen
    assert any("init_from" in line for line in lines)
