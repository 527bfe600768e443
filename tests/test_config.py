"""Strict experiment validation: every problem at once, each naming file, table and key."""
import pytest

from facebone.experiment import tomlio
from facebone.experiment.config import apply_overrides, load_experiment, validate
from facebone.plugin.discovery import load_plugins
from facebone.errors import ConfigError

PLUGINS = load_plugins()

GOOD = """
[experiment]
name = "t"
[data]
train = "{train}"
image_size = 32
[backbone]
type = "iresnet18"
pooling = "gwp"
width = 8
embedding_size = 64
[head]
type = "cosface"
margin = 0.3
[train]
lr = 0.05
"""


def test_valid_experiment_resolves_every_default(write_toml, tmp_path):
    path = write_toml(GOOD.format(train=tmp_path))
    exp = load_experiment(path, plugins=PLUGINS)
    assert exp.backbone.options.pooling == "gwp" and exp.embedding_size == 64
    assert exp.warp.type == "cartesian" and exp.head.options.scale == 64.0
    resolved = exp.resolved()
    assert resolved["train"]["lr"] == 0.05 and resolved["train"]["optimizer"] == "sgd"
    assert resolved["backbone"] == {"type": "iresnet18", "embedding_size": 64, "pooling": "gwp", "dropout": 0.0,
                                    "width": 8, "stem7x7": False}
    # the resolved configuration is itself a valid experiment giving the same resolution
    again = validate(tomlio.loads(tomlio.dumps(resolved)), source="resolved", plugins=PLUGINS)
    assert again.resolved() == resolved


def test_all_problems_reported_at_once(write_toml, tmp_path):
    path = write_toml(f"""
[experment]
[data]
train = "{tmp_path}"
image_size = "big"
[backbone]
type = "iresnt50"
[head]
type = "arcface"
margn = 0.5
[train]
optimizer = "adam"
""")
    with pytest.raises(ConfigError) as info:
        load_experiment(path, plugins=PLUGINS)
    problems = info.value.problems
    assert len(problems) == 5, problems
    text = str(info.value)
    assert f"{path}: unknown table [experment] (did you mean 'experiment'?)" in text
    assert f"{path} [data]: key 'image_size' expects integer, got 'big'" in text
    assert f"{path} [backbone]: key 'type': unknown backbone 'iresnt50' (did you mean 'iresnet50'" in text
    assert "facebone list backbones" in text
    assert f"{path} [head] (head 'arcface'): unknown key 'margn' (did you mean 'margin'" in text
    assert f"{path} [train]: key 'optimizer' expects 'sgd' | 'adamw', got 'adam'" in text


def test_missing_data_path_and_missing_tables(write_toml, tmp_path):
    path = write_toml('[data]\ntrain = "no/such/dir"\n')
    with pytest.raises(ConfigError) as info:
        load_experiment(path, plugins=PLUGINS)
    text = str(info.value)
    assert f"{path} [data]: key 'train': path 'no/such/dir' does not exist" in text
    assert f"{path}: missing table [backbone]" in text


def test_synth_table_allows_a_missing_path(write_toml, tmp_path):
    path = write_toml(GOOD.format(train=tmp_path / "later") + "[data.synth]\nidentities = 5\n")
    exp = load_experiment(path, plugins=PLUGINS)
    assert exp.synth.identities == 5 and exp.resolved()["data"]["synth"]["identities"] == 5


def test_syntax_error_names_file_and_line(write_toml):
    path = write_toml("[data\ntrain = 1\n")
    with pytest.raises(ConfigError, match=rf"{path}: TOML syntax error: .*line 1"):
        load_experiment(path, plugins=PLUGINS)


def test_overrides_are_parsed_as_toml_and_validated(write_toml, tmp_path):
    path = write_toml(GOOD.format(train=tmp_path))
    exp = load_experiment(path, ["train.lr=0.2", "backbone.pooling=gap", "train.epochs=3"], plugins=PLUGINS)
    assert exp.train.lr == 0.2 and exp.backbone.options.pooling == "gap" and exp.train.epochs == 3
    with pytest.raises(ConfigError, match=r"\[train\]: key 'epochs' expects integer, got 'many'"):
        load_experiment(path, ["train.epochs=many"], plugins=PLUGINS)
    with pytest.raises(ConfigError, match="expected table.key=value"):
        load_experiment(path, ["lr0.2"], plugins=PLUGINS)


def test_eval_overrides_address_entries_by_index():
    raw = {"eval": [{"type": "a"}, {"type": "b"}]}
    assert apply_overrides(raw, ["eval.1.targets=['x']"], "f")["eval"][1]["targets"] == ["x"]
    with pytest.raises(ConfigError, match="not a valid index"):
        apply_overrides(raw, ["eval.5.x=1"], "f")


def test_component_check_hook_runs_at_validation(write_toml, tmp_path, monkeypatch):
    comp = PLUGINS.get("backbone", "iresnet18")
    monkeypatch.setattr(type(comp), "check", property(lambda self: (lambda o, e: [f"needs warp x, got {e['warp']['type']}"])))
    path = write_toml(GOOD.format(train=tmp_path))
    with pytest.raises(ConfigError, match=r"\[backbone\] \(backbone 'iresnet18'\): needs warp x, got cartesian"):
        load_experiment(path, plugins=PLUGINS)
