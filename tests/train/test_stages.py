"""Stages: init_from (key report, strict), classifier_from (optionally frozen), freeze patterns with
the batch-norm policy, the parameter count of `facebone check`, and the objective's terms in the loop."""
import re
from pathlib import Path

import pytest
import torch

from facebone.errors import ConfigError, DataError
from facebone.experiment import tomlio
from facebone.experiment.config import validate
from facebone.data import generate_synthetic
from facebone.model.build import build_model
from facebone.plugin.discovery import load_plugins
from facebone.train.freeze import apply_freeze, closest, matches
from facebone.train.init import init_model
from facebone.train.loop import Trainer
from facebone.train.stages import preflight
from facebone.weights.checkpoint import read_checkpoint, save_checkpoint

from fb_testing import facebone

PLUGINS = load_plugins()


def raw_experiment(root: Path, name: str, backbone: dict | None = None, **train) -> dict:
    return {
        "experiment": {"name": name, "seed": 3, "output_dir": str(root / "runs")},
        "data": {"train": str(root / "data"), "image_size": 32},
        "backbone": backbone or {"type": "iresnet18", "width": 8, "embedding_size": 16},
        "head": {"type": "cosface", "scale": 16.0},
        "train": {"batch_size": 16, "epochs": 1, "max_steps": 3, "lr": 0.05, "log_every": 1, **train},
    }


def fit(root: Path, name: str, raw: dict | None = None, **train) -> tuple[Path, dict, list[str]]:
    run = root / name
    run.mkdir()
    lines: list[str] = []
    exp = validate(raw or raw_experiment(root, name, **train), source="test", plugins=PLUGINS)
    (run / "config.toml").write_text(tomlio.dumps(exp.resolved()))  # as `facebone run` writes it
    Trainer(exp, run, log=lines.append, progress=False).fit()
    return run, read_checkpoint(run / "checkpoints" / "last.safetensors")[0], lines


def fake_run(root: Path, raw: dict) -> Path:
    """A run directory (config.toml + checkpoint) of an untrained model, as a stage source."""
    exp = validate(raw, source="test", plugins=PLUGINS)
    run = root / "runs" / raw["experiment"]["name"]
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text(tomlio.dumps(exp.resolved()))
    save_checkpoint(run / "checkpoints" / "last.safetensors", {"model": build_model(exp)},
                    {"backbone": exp.backbone.type})
    return run


@pytest.fixture(scope="module")
def trunk(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    generate_synthetic(root / "data", identities=12, images_per_identity=6, holdout_identities=6, pairs=40,
                       image_size=32, seed=1, progress=False)
    run, tensors, _ = fit(root, "trunk")
    return root, run, tensors


def test_patterns_match_globs_and_module_prefixes():
    assert matches("backbone.layer3.0.conv1.weight", "backbone.layer3*")
    assert matches("backbone.layer3.0.conv1.weight", "backbone.layer3")
    assert not matches("backbone.layer30.weight", "backbone.layer3")
    assert not matches("backbone.layer2.0.conv1.weight", "backbone.layer3*")
    names = ["backbone.layer1.0.conv1.weight", "backbone.layer2.0.conv1.weight", "classifier.weight"]
    assert closest("backbone.layr1*", names)[0] == "backbone.layer1"


def test_second_stage_starts_from_the_trunk_and_keeps_frozen_parts(trunk):
    root, trunk_run, before = trunk
    run, after, lines = fit(root, "branch", init_from=str(trunk_run), classifier_from=str(trunk_run),
                            classifier_frozen=True, freeze=["backbone.conv1*", "backbone.bn1*", "backbone.layer1"])
    held = [k for k in before if re.match(r"model\.backbone\.(conv1|bn1|layer1)\.", k)]
    assert any("running_mean" in k for k in held) and any(k.endswith("conv1.weight") for k in held)
    assert all(torch.equal(before[k], after[k]) for k in held)  # weights and batch-norm statistics
    assert torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert not torch.equal(before["model.backbone.fc.weight"], after["model.backbone.fc.weight"])
    assert not torch.equal(before["model.backbone.layer2.0.bn1.running_mean"],
                           after["model.backbone.layer2.0.bn1.running_mean"])
    assert any(f"init_from {trunk_run}" in line and "loaded" in line for line in lines)
    assert any("frozen" in line and "batch-norm layers hold their statistics" in line for line in lines)


def test_batch_norm_statistics_may_keep_updating(trunk):
    root, trunk_run, before = trunk
    _, after, _ = fit(root, "bn_update", init_from=str(trunk_run), freeze=["backbone.layer1"], freeze_bn="update")
    assert torch.equal(before["model.backbone.layer1.0.bn1.weight"], after["model.backbone.layer1.0.bn1.weight"])
    assert not torch.equal(before["model.backbone.layer1.0.bn1.running_mean"],
                           after["model.backbone.layer1.0.bn1.running_mean"])


def test_a_pattern_that_matches_nothing_names_the_closest_parameters(trunk):
    root, _, _ = trunk
    exp = validate(raw_experiment(root, "typo", freeze=["backbone.layr1*"]), source="test", plugins=PLUGINS)
    with pytest.raises(ConfigError, match=r"\[train\] freeze: pattern 'backbone.layr1\*' matches no parameter "
                                          r"\(closest names: 'backbone.layer1'"):
        preflight(exp)


def test_init_from_another_backbone_is_refused_with_the_key_report(trunk, tmp_path):
    root, _, _ = trunk
    other = fake_run(tmp_path, raw_experiment(root, "mbf", {"type": "mobilefacenet", "embedding_size": 16}))
    exp = validate(raw_experiment(root, "wrong", init_from=str(other)), source="test", plugins=PLUGINS)
    with pytest.raises(DataError) as info:
        preflight(exp)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"init_from .*last\.safetensors \(backbone mobilefacenet\) does not fit backbone iresnet18: "
                     r"\d+ missing \(e\.g\. backbone\..*\); \d+ unexpected \(e\.g\. backbone\..*\)", message), message
    assert "init_strict = false" in message


def test_init_from_loose_loads_what_matches_and_reports_the_rest(trunk, tmp_path):
    root, _, _ = trunk
    wider = fake_run(tmp_path, raw_experiment(root, "wide", {"type": "iresnet18", "width": 8, "embedding_size": 32}))
    exp = validate(raw_experiment(root, "loose", init_from=str(wider), init_strict=False), source="test",
                   plugins=PLUGINS)
    with pytest.raises(DataError, match="with another shape"):
        preflight(validate(raw_experiment(root, "strict", init_from=str(wider)), source="test", plugins=PLUGINS))
    model, lines = build_model(exp), []
    source = read_checkpoint(wider / "checkpoints" / "last.safetensors")[0]
    report = init_model(model, wider / "checkpoints" / "last.safetensors", backbone="iresnet18", strict=False,
                        log=lines.append)
    state = model.state_dict()
    assert report.mismatched and {k for k, _, _ in report.mismatched} >= {"backbone.fc.weight"}
    assert torch.equal(state["backbone.conv1.weight"], source["model.backbone.conv1.weight"])
    assert not torch.equal(state["backbone.fc.weight"][:, :1], source["model.backbone.fc.weight"][:, :1].T[:1].T)
    assert lines and "with another shape" in lines[0]


def test_classifier_from_must_have_the_same_classes(trunk, tmp_path):
    root, trunk_run, _ = trunk
    tensors = read_checkpoint(trunk_run / "checkpoints" / "last.safetensors")[0]
    save_checkpoint(tmp_path / "other.safetensors", {}, {})
    small = {k: v[:5] if k == "classifier.weight" else v for k, v in tensors.items()}
    from safetensors.torch import save_file

    save_file(small, str(tmp_path / "small.safetensors"))
    exp = validate(raw_experiment(root, "cls", classifier_from=str(tmp_path / "small.safetensors")), source="test",
                   plugins=PLUGINS)
    with pytest.raises(DataError, match=r"classifier_from .*holds 5 x 16 centres, this experiment needs 12 x 16-D"):
        preflight(exp, num_classes=12)


def test_check_shows_how_many_parameters_train(trunk, write_toml):
    root, _, _ = trunk
    path = write_toml(tomlio.dumps(raw_experiment(root, "count", freeze=["backbone.layer1*", "backbone.conv1*"])))
    result = facebone("check", path, "--resolved")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    total, train = (int(x.replace(",", "")) for x in re.match(r"# ([\d,]+) parameters, ([\d,]+) train", first).groups())
    exp = validate(raw_experiment(root, "count"), source="test", plugins=PLUGINS)
    model = build_model(exp)
    frozen = sum(p.numel() for n, p in model.named_parameters()
                 if n.startswith(("backbone.layer1.", "backbone.conv1.")) or not p.requires_grad)
    assert total - train == frozen > 0
    assert total >= sum(p.numel() for p in model.parameters()) + 12 * 16  # model, classifier (12 classes x 16-D)
    assert tomlio.loads(result.stdout)["train"]["freeze"] == ["backbone.layer1*", "backbone.conv1*"]


def test_bad_stage_input_is_one_line_and_exit_2_without_a_run_directory(trunk, write_toml, tmp_path):
    root, _, _ = trunk
    other = fake_run(tmp_path, raw_experiment(root, "mbf2", {"type": "mobilefacenet", "embedding_size": 16}))
    cases = {
        "pattern": (raw_experiment(root, "bad_pattern", freeze=["backbone.nothing*"]), "matches no parameter"),
        "init": (raw_experiment(root, "bad_init", init_from=str(other)), "does not fit backbone iresnet18"),
        "rate": ({**raw_experiment(root, "bad_rate"), "classifier": {"type": "partial_fc", "sample_rate": 1.5}},
                 r"\[classifier\]: key 'sample_rate' must be in \(0, 1\], got 1.5"),
    }
    for name, (raw, expected) in cases.items():
        result = facebone("run", write_toml(tomlio.dumps(raw), f"{name}.toml"), "--no-progress")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and re.search(expected, lines[0]), (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert not (root / "runs" / raw["experiment"]["name"]).exists()


def test_every_objective_term_is_logged(trunk):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, trunk_run, _ = trunk
    raw = raw_experiment(root, "distilled", init_from=str(trunk_run), freeze=["backbone.layer1*"])
    raw["objective"] = {"type": "distill", "teacher": str(trunk_run), "embedding_weight": 0.5,
                        "features": ["backbone.layer2.0"]}
    run, _, _ = fit(root, "distilled", raw)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/ce", "train/embedding_mse", "train/feature_mse/backbone.layer2.0"} <= tags
    loss = [e.value for e in events.Scalars("train/loss")]
    parts = [[e.value for e in events.Scalars(t)] for t in
             ("train/ce", "train/embedding_mse", "train/feature_mse/backbone.layer2.0")]
    assert all(abs(total - sum(p)) < 1e-4 * max(1.0, total) for total, *p in zip(loss, *parts))
    assert all(v > 0 for v in parts[1] + parts[2])
