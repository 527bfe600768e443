"""Every experiment in experiments/ validates, and (slow) runs a few steps on generated data."""
from __future__ import annotations

from pathlib import Path

import pytest

from facebone.cli import main
from facebone.data.synth import generate_synthetic
from facebone.experiment import tomlio
from facebone.experiment.config import load_experiment

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


def test_there_are_experiments() -> None:
    names = {p.stem for p in EXPERIMENTS}
    assert {"quickstart", "ms1mv3_r50_arcface", "ibug_iresnet18_cartesian"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_validates(path: Path) -> None:
    """Everything but the presence of the data (real data sets are not here) is checked."""
    skip_without_optional_packages(path)
    exp = load_experiment(path, check_paths=False)
    assert exp.name


def skip_without_optional_packages(path: Path) -> None:
    import importlib.util

    backbone = tomlio.loads(path.read_text()).get("backbone", {}).get("type")
    if backbone == "timm" and importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed (pip install 'facebone[timm]')")


def smoke_overrides(path: Path, data: Path) -> list[str]:
    """A few CPU steps of the experiment on a small generated set: same components and recipe."""
    raw = tomlio.loads(path.read_text())
    sets = [f"data.train={data}", "data.image_size=32", "train.max_steps=2", "train.batch_size=16",
            'train.precision="fp32"', "train.eval_every=0", "train.checkpoint_every=0", 'train.device="cpu"',
            "data.num_workers=0", "experiment.output_dir=" + str(data.parent / "runs")]
    if "synth" in raw.get("data", {}):
        sets += ["data.synth.identities=12", "data.synth.images_per_identity=4", "data.synth.holdout_identities=6",
                 "data.synth.pairs=20"]
    for i, table in enumerate(raw.get("eval", [])):
        if table.get("type") == "verification":
            sets.append(f'eval.{i}.targets=["holdout"]')
    return sets


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_runs_a_few_steps(path: Path, tmp_path: Path) -> None:
    skip_without_optional_packages(path)
    data = tmp_path / "data"
    raw = tomlio.loads(path.read_text())
    if "synth" not in raw.get("data", {}):
        generate_synthetic(data, identities=12, images_per_identity=4, holdout_identities=6, pairs=20,
                           image_size=32)
    assert main(["run", str(path), "--no-progress", *sum((["--set", s] for s in smoke_overrides(path, data)), [])]) == 0
    assert list((tmp_path / "runs").glob("*/checkpoints/last.safetensors"))
