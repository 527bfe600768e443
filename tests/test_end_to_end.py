"""One short end-to-end run through the CLI: synthetic data, training, evaluation, eval again."""
import json

import pytest

from fb_testing import facebone, make_third_party

EXPERIMENT = """
[experiment]
name = "e2e"
seed = 7
output_dir = "{out}"

[data]
train = "{data}"
image_size = 32

[data.synth]
identities = 16
images_per_identity = 8
holdout_identities = 8
pairs = 60

[backbone]
type = "{backbone}"
width = 8
embedding_size = 32

[head]
type = "arcface"
scale = 16.0
margin = 0.2

[train]
batch_size = 32
epochs = 1
max_steps = 3
lr = 0.05
checkpoint_every = 2

[embed]
batch_size = 64

[[eval]]
type = "verification"
targets = ["holdout"]
"""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    exp = tmp / "e2e.toml"
    exp.write_text(EXPERIMENT.format(out=tmp / "runs", data=tmp / "data", backbone="iresnet18"))
    result = facebone("run", exp, "--set", "train.lr=0.02", cwd=tmp)
    assert result.returncode == 0, result.stderr
    return tmp, exp, result


def test_run_writes_a_complete_run_directory(finished_run):
    tmp, exp, result = finished_run
    run = tmp / "runs" / "e2e"
    for name in ("experiment.toml", "config.toml", "environment.json", "results.json",
                 "checkpoints/last.safetensors", "checkpoints/step_0000002.safetensors"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert "--set train.lr=0.02" in (run / "experiment.toml").read_text()
    config = (run / "config.toml").read_text()
    assert "lr = 0.02" in config and "pooling = \"flatten\"" in config
    env = json.loads((run / "environment.json").read_text())
    assert env["plugins"]["iresnet"]["distribution"] == "facebone" and "torch" in env
    results = json.loads((run / "results.json").read_text())
    accuracy = results["metrics"]["holdout/accuracy"]
    assert 0.0 <= accuracy <= 1.0 and results["step"] == 3
    assert "holdout/accuracy" in result.stdout  # the summary table
    assert "samples/s" in result.stderr and "loss=" in result.stderr and "lr=" in result.stderr


def test_a_second_run_does_not_overwrite_the_first(finished_run):
    tmp, exp, _ = finished_run
    result = facebone("run", exp, "--set", "train.max_steps=1", "--no-progress", cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert (tmp / "runs" / "e2e-2" / "results.json").is_file()
    assert json.loads((tmp / "runs" / "e2e" / "results.json").read_text())["step"] == 3


def test_eval_of_a_run_directory_reproduces_its_metrics(finished_run):
    tmp, _, _ = finished_run
    run = tmp / "runs" / "e2e"
    before = json.loads((run / "results.json").read_text())["metrics"]["holdout/accuracy"]
    result = facebone("eval", run)
    assert result.returncode == 0, result.stderr
    after = json.loads((run / "results.json").read_text())
    assert after["metrics"]["holdout/accuracy"] == pytest.approx(before, abs=1e-9)
    assert len(after["history"]) == 2


def test_eval_errors_are_one_line(finished_run, tmp_path):
    tmp, exp, _ = finished_run
    result = facebone("eval", exp)
    assert result.returncode == 2 and "needs --checkpoint" in result.stderr and "Traceback" not in result.stderr
    result = facebone("eval", tmp / "runs" / "e2e", "--checkpoint", tmp_path / "missing.safetensors")
    assert result.returncode == 2 and "missing.safetensors: checkpoint not found" in result.stderr
    result = facebone("eval", exp, "--checkpoint", tmp_path / "missing.safetensors")
    assert result.returncode == 2 and "checkpoint not found" in result.stderr
    assert not (tmp / "runs" / "e2e-eval").exists()  # no run directory for an evaluation that never ran
    other = facebone("eval", tmp / "runs" / "e2e", "--set", "backbone.width=16")
    assert other.returncode == 2 and "shape mismatch" in other.stderr


def test_third_party_backbone_trains_with_no_change_to_facebone(tmp_path):
    site = tmp_path / "site"
    make_third_party(site)
    exp = tmp_path / "tp.toml"
    text = EXPERIMENT.format(out=tmp_path / "runs", data=tmp_path / "data", backbone="thirdnet")
    exp.write_text(text.replace("max_steps = 3", "max_steps = 2"))
    result = facebone("run", exp, "--no-progress", env={"PYTHONPATH": str(site)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    env = json.loads((tmp_path / "runs" / "e2e" / "environment.json").read_text())
    assert env["plugins"]["thirdnet"] == {"distribution": "fb-thirdparty", "version": "0.7",
                                          "components": ["backbone:thirdnet"]}


def test_export_of_a_run_directory_includes_the_warp_and_matches(finished_run, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    tmp, _, _ = finished_run
    out = tmp_path / "model.onnx"
    result = facebone("export", tmp / "runs" / "e2e", "--onnx", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert out.is_file() and report["max_abs_diff"] < 1e-3 and report["min_cosine"] > 0.9999
