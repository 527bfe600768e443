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
        if table.get("type") in ("verification", "verification_multires"):
            sets.append(f'eval.{i}.targets=["holdout"]')
    if str(raw.get("backbone", {}).get("type", "")).startswith("btnet"):
        sets.append("backbone.branches=[16, 8]")  # branches must end at the trunk's final map (2x2 at 32)
    if "branches" in raw.get("objective", {}):
        sets.append("objective.branches=[16, 8]")
    return sets


def earlier_stages(raw: dict) -> dict[str, str]:
    """``{override key: run name}`` of the runs a staged experiment starts from (init_from, ...)."""
    refs = {"train.init_from": raw.get("train", {}).get("init_from", ""),
            "train.classifier_from": raw.get("train", {}).get("classifier_from", ""),
            "objective.teacher": raw.get("objective", {}).get("teacher", "")}
    return {key: Path(value).name for key, value in refs.items() if value}


def run_smoke(path: Path, data: Path) -> None:
    """The experiment's smoke run, after those of the earlier stages it names (experiments of that name)."""
    raw = tomlio.loads(path.read_text())
    sets = smoke_overrides(path, data)
    for key, name in earlier_stages(raw).items():
        run_dir = data.parent / "runs" / name
        if not run_dir.is_dir():
            stage = next((p for p in EXPERIMENTS if tomlio.loads(p.read_text()).get("experiment", {}).get("name") == name),
                         None)
            assert stage is not None, f"{path.name}: no experiment is named {name!r} ({key})"
            run_smoke(stage, data)
        sets.append(f"{key}={run_dir}")
    assert main(["run", str(path), "--no-progress", *sum((["--set", s] for s in sets), [])]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_runs_a_few_steps(path: Path, tmp_path: Path) -> None:
    skip_without_optional_packages(path)
    data = tmp_path / "data"
    raw = tomlio.loads(path.read_text())
    if "synth" not in raw.get("data", {}):
        generate_synthetic(data, identities=12, images_per_identity=4, holdout_identities=6, pairs=20,
                           image_size=32)
    run_smoke(path, data)
    assert list((tmp_path / "runs").glob("*/checkpoints/last.safetensors"))
