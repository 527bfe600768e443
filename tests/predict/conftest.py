"""A small trained run (made once per session, in-process) and a predictor over a tiny model."""
from __future__ import annotations

from pathlib import Path

import pytest

RUN_EXPERIMENT = """
[experiment]
name = "tiny"
seed = 7
output_dir = "{out}"

[data]
train = "{data}"
image_size = 32

[data.synth]
identities = 16
images_per_identity = 6
holdout_identities = 8
pairs = 60

[backbone]
type = "iresnet18"
width = 8
embedding_size = 32

[train]
batch_size = 32
epochs = 1
max_steps = 2
lr = 0.02

[embed]
batch_size = 64

[[eval]]
type = "verification"
targets = ["holdout"]
"""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A finished run (quickstart-like: synthetic identities, held-out verification pairs, eval scores saved)."""
    import torch

    from facebone.cli import main

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("tinyrun")
    exp = tmp / "tiny.toml"
    exp.write_text(RUN_EXPERIMENT.format(out=tmp / "runs", data=tmp / "data"))
    assert main(["run", str(exp)]) == 0
    run = tmp / "runs" / "tiny"
    assert (run / "eval" / "verification" / "holdout_scores.npy").is_file()
    return run


@pytest.fixture(scope="session")
def holdout_files(tiny_run: Path, tmp_path_factory) -> list[Path]:  # type: ignore[no-untyped-def]
    """The run's held-out pair images as JPEG files (the bytes stored in holdout.bin), in pair order."""
    from facebone.data.verification_bin import load_bin_raw

    bins, _ = load_bin_raw(tiny_run.parent.parent / "data" / "holdout.bin")
    folder = tmp_path_factory.mktemp("holdout") / "images"
    folder.mkdir()
    paths = []
    for i, data in enumerate(bins):
        path = folder / f"{i:04d}.jpg"
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths


@pytest.fixture
def make_predictor():  # type: ignore[no-untyped-def]
    """``make_predictor(warp="cartesian", flip=True, size=32, **warp_options)``: a Predictor over a
    tiny random iresnet18 (BN statistics set), with no run directory."""
    import torch
    from torch.optim.swa_utils import update_bn

    from facebone.model.build import build_backbone
    from facebone.model.face_model import FaceModel
    from facebone.plugin.build import build_component
    from facebone.plugin.discovery import get_plugins
    from facebone.plugin.options import build_options
    from facebone.predict.networks import TorchNetwork
    from facebone.predict.predictor import ModelFacts, Predictor

    def make(warp: str = "cartesian", flip: bool = True, size: int = 32, precision: str = "fp32", **options):  # type: ignore[no-untyped-def]
        torch.manual_seed(0)
        backbone = build_backbone("iresnet18", {"width": 8}, embedding_size=16, image_size=size)
        update_bn([torch.rand(8, 3, size, size) * 2 - 1], backbone)
        comp = get_plugins().get("warp", warp)
        opts, problems = build_options(comp.options, dict(options), "[warp]")
        assert not problems
        model = FaceModel(build_component(comp, opts, image_size=size), backbone).eval()
        net = TorchNetwork(model, image_size=size, flip=flip, roi_warp=warp != "cartesian", precision=precision,
                           channels_last=False, batch_size=8)
        facts = ModelFacts(image_size=size, embedding_size=16, flip=flip, warp=warp,
                           roi_ratio=float(options.get("roi_ratio", 0.8)), batch_size=8, source="tiny",
                           run_dir=None, checkpoint=None)
        return Predictor(net, facts), model

    return make
