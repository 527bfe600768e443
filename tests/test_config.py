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


def test_classifier_and_objective_tables_resolve_and_are_checked(write_toml, tmp_path):
    exp = load_experiment(write_toml(GOOD.format(train=tmp_path)), plugins=PLUGINS)
    resolved = exp.resolved()
    assert resolved["classifier"] == {"type": "full", "sample_rate": 1.0, "subcenters": 1}
    assert resolved["objective"] == {"type": "classification"}
    text = GOOD.format(train=tmp_path) + """
[classifier]
type = "partial_fc"
sample_rate = 0.1
subcenters = 3
[objective]
type = "distill"
teacher = "{teacher}"
embedding_weight = 0.5
""".format(teacher=tmp_path)
    exp = load_experiment(write_toml(text, "pfc.toml"), plugins=PLUGINS)
    assert (exp.classifier.type, exp.classifier.sample_rate, exp.classifier.subcenters) == ("partial_fc", 0.1, 3)
    assert exp.objective.type == "distill" and exp.objective.options.teacher == str(tmp_path.resolve())
    bad = GOOD.format(train=tmp_path) + """
[classifier]
type = "partial_fc"
sample_rate = 0.0
[objective]
type = "distil"
"""
    with pytest.raises(ConfigError) as info:
        load_experiment(write_toml(bad, "bad.toml"), plugins=PLUGINS)
    problems = info.value.problems
    assert any("[classifier]: key 'sample_rate' must be in (0, 1], got 0.0" in p for p in problems)
    assert any("[objective]: key 'type': unknown objective 'distil' (did you mean 'distill'" in p for p in problems)
    for table, message in (("[classifier]\nsample_rate = 0.5", "needs type = 'partial_fc'"),
                           ("[classifier]\nsubcenters = 0", "must be >= 1"),
                           ('[objective]\ntype = "distill"', "missing required key 'teacher'")):
        with pytest.raises(ConfigError, match=message):
            load_experiment(write_toml(GOOD.format(train=tmp_path) + table + "\n", "bad2.toml"), plugins=PLUGINS)
    missing = GOOD.format(train=tmp_path).replace("lr = 0.05", 'lr = 0.05\ninit_from = "nowhere/run"')
    with pytest.raises(ConfigError, match=r"\[train\] key 'init_from': path 'nowhere/run' does not exist"):
        load_experiment(write_toml(missing, "missing.toml"), plugins=PLUGINS)


@pytest.mark.parametrize("name", ["..", ".", "a/b", "/etc/passwd", "~root"])
def test_unsafe_run_names_are_refused_at_validation(write_toml, tmp_path, name):
    path = write_toml(GOOD.format(train=tmp_path).replace('name = "t"', f'name = "{name}"'))
    with pytest.raises(ConfigError, match=rf"\[experiment\]: key 'name': run name '{name}' is not one safe path"):
        load_experiment(path, plugins=PLUGINS)


def test_the_default_name_of_a_file_like_dotdot_toml_is_refused(write_toml, tmp_path):
    path = write_toml(GOOD.format(train=tmp_path).replace('name = "t"\n', ""), name="..toml")
    with pytest.raises(ConfigError, match=r"key 'name' is not set and the default, the file name '\.', is unusable"):
        load_experiment(path, plugins=PLUGINS)
    assert load_experiment(path, ["experiment.name=ok"], plugins=PLUGINS).name == "ok"


def test_byte_order_mark_and_non_regular_files(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.format(train=tmp_path).encode())
    assert load_experiment(path, plugins=PLUGINS).name == "t"
    with pytest.raises(ConfigError, match="/dev/null: not a regular file"):
        load_experiment("/dev/null", plugins=PLUGINS)


@pytest.mark.parametrize("override, match", [
    ("train.log_every=0", "key 'log_every' must be positive"),
    ("experiment.seed=-1", "key 'seed' must be a non-negative integer"),
    ("train.max_steps=-1", "key 'max_steps' must be >= 0"),
    ("train.warmup_epochs=-0.5", "key 'warmup_epochs' must be >= 0"),
    ("train.checkpoint_every=-3", "key 'checkpoint_every' must be >= 0"),
    ("train.eval_every=-3", "key 'eval_every' must be >= 0"),
    ("train.lr=inf", "key 'lr' must be a finite number"),
    ("train.weight_decay=nan", "key 'weight_decay' must be a finite number"),
])
def test_numbers_out_of_range(write_toml, tmp_path, override, match):
    path = write_toml(GOOD.format(train=tmp_path))
    with pytest.raises(ConfigError, match=match):
        load_experiment(path, [override], plugins=PLUGINS)


def test_component_checks_name_the_eval_entry_and_come_with_the_other_problems(write_toml, tmp_path):
    (tmp_path / "lfw.bin").write_bytes(b"")
    path = write_toml(GOOD.format(train=tmp_path) + '[[eval]]\ntype = "verification"\ntargets = ["lfw"]\n'
                      '[[eval]]\ntype = "verification"\nname = "v2"\ntargets = ["agedb_30", "lfw"]\n')
    assert len(load_experiment(path, ['eval.1.targets=["lfw"]'], plugins=PLUGINS).evals) == 2
    with pytest.raises(ConfigError) as info:
        load_experiment(path, ["train.lr=-1"], plugins=PLUGINS)
    assert len(info.value.problems) == 2
    assert "key 'lr' must be positive" in info.value.problems[0]
    assert info.value.problems[1].endswith(f"[[eval]] #2 (evaluator 'verification'): key 'targets': 'agedb_30' -> "
                                           f"{tmp_path / 'agedb_30.bin'} does not exist (a verification .bin)")


def test_synthetic_holdout_need_not_exist_yet_but_a_real_pack_is_protected(write_toml, tmp_path):
    synth = '[data.synth]\nidentities = 4\n[[eval]]\ntype = "verification"\ntargets = ["holdout"]\n'
    path = write_toml(GOOD.format(train=tmp_path / "new").replace("[backbone]", synth.split("[[eval]]")[0]
                                                                   + "[backbone]") + "[[eval]]" + synth.split("[[eval]]")[1])
    assert load_experiment(path, plugins=PLUGINS).synth is not None
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "train.rec").write_bytes(b"real")
    with pytest.raises(ConfigError, match=r"\[data.synth\]: \[data\] train '.*pack' is not empty and holds no "):
        load_experiment(path, [f'data.train="{tmp_path / "pack"}"'], plugins=PLUGINS)


def test_changing_an_evals_type_drops_the_name_derived_from_the_old_type(write_toml, tmp_path):
    from facebone.experiment.config import _rename_retyped_evals

    before = {"eval": [{"type": "ijb", "name": "ijb", "root": "x"}, {"type": "ijb", "name": "mine"}]}
    after = {"eval": [{"type": "ijb_identification", "name": "ijb", "root": "x"},
                      {"type": "ijb_identification", "name": "mine"}]}
    _rename_retyped_evals(before, after)
    assert after["eval"] == [{"type": "ijb_identification", "root": "x"},
                             {"type": "ijb_identification", "name": "mine"}]  # a chosen name is kept


def test_a_plugin_reusing_a_builtin_name_makes_it_ambiguous_and_dist_name_picks(write_toml, tmp_path, monkeypatch):
    """What the README warns about: registering 'verification' shadows the built-in everywhere."""
    import facebone
    from facebone.plugin.discovery import load_plugins as load
    from fb_testing import install_module, make_entry_point
    from importlib.metadata import entry_points

    @facebone.hookimpl
    def facebone_evaluators(registry):  # type: ignore[no-untyped-def]
        registry.add("verification", lambda options, **runtime: None, summary="a plugin's own verification")

    install_module(monkeypatch, "tp_shadow", facebone_evaluators=facebone_evaluators)
    plugins = load([*entry_points(group="facebone"), make_entry_point("shadow", "tp_shadow", dist="my-dist")])
    (tmp_path / "lfw.bin").write_bytes(b"")
    path = write_toml(GOOD.format(train=tmp_path) + '[[eval]]\ntype = "verification"\ntargets = ["lfw"]\n')
    with pytest.raises(ConfigError, match=r"\[\[eval\]\] #1: key 'type': evaluator 'verification' is provided by "
                                          "both .*pick one with .*'facebone:verification'"):
        load_experiment(path, plugins=plugins)
    exp = load_experiment(path, ['eval.0.type="facebone:verification"'], plugins=plugins)
    assert exp.evals[0].component.provider.dist == "facebone" and exp.evals[0].core["name"] == "verification"
