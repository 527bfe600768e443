"""Head options: out-of-range values are refused with one clear line naming the key, the
sub-center head checks the classifier's K, and `facebone describe` shows published defaults
with their source."""
import types

import pytest

from facebone.experiment.config import load_experiment
from facebone.plugin.discovery import load_plugins
from facebone.errors import ConfigError
from facebone.plugin.options import build_options, describe_options
from facebone.plugins.heads.magface import MagFaceOptions, min_lambda_g

from fb_testing import facebone

PLUGINS = load_plugins()
BUILTIN = [c.name for c in PLUGINS.registry("head") if c.provider.dist == "facebone"]
EXPECTED = {"arcface", "cosface", "combined", "sphereface", "adaface", "curricularface", "magface",
            "elasticface_arc", "elasticface_cos", "subcenter"}

BAD = [
    ("arcface", {"margin": -0.1}, "key 'margin' must be in [0, pi/2), got -0.1"),
    ("arcface", {"margin": 2.0}, "key 'margin' must be in [0, pi/2), got 2.0"),
    ("arcface", {"scale": 0.0}, "key 'scale' must be positive, got 0.0"),
    ("cosface", {"margin": -0.35}, "key 'margin' must be in [0, 1], got -0.35"),
    ("combined", {"m1": 0.0}, "key 'm1' must be positive, got 0.0"),
    ("combined", {"m2": -0.2}, "key 'm2' must be in [0, pi), got -0.2"),
    ("combined", {"m3": 1.5}, "key 'm3' must be in [0, 1], got 1.5"),
    ("combined", {"interclass_filtering_threshold": 1.0}, "key 'interclass_filtering_threshold' must be in [0, 1)"),
    ("sphereface", {"margin": 0.5}, "key 'margin' must be >= 1"),
    ("sphereface", {"anneal_base": -1.0}, "key 'anneal_base' must be >= 0"),
    ("adaface", {"h": 1.5}, "key 'h' must be in [0, 1], got 1.5"),
    ("adaface", {"h": -0.1}, "key 'h' must be in [0, 1], got -0.1"),
    ("adaface", {"margin": -0.4}, "key 'margin' must be in [0, pi/2), got -0.4"),
    ("adaface", {"t_alpha": 0.0}, "key 't_alpha' must be in (0, 1]"),
    ("curricularface", {"margin": -0.5}, "key 'margin' must be in [0, pi/2), got -0.5"),
    ("curricularface", {"t_alpha": 1.5}, "key 't_alpha' must be in (0, 1]"),
    ("magface", {"l_a": 110.0, "u_a": 110.0}, "key 'l_a' (110.0) must be smaller than key 'u_a' (110.0)"),
    ("magface", {"l_a": 120.0}, "key 'l_a' (120.0) must be smaller than key 'u_a' (110.0)"),
    ("magface", {"l_a": 0.0}, "key 'l_a' must be positive, got 0.0"),
    ("magface", {"l_m": 0.9}, "key 'l_m' (0.9) must not exceed key 'u_m' (0.8)"),
    ("magface", {"l_m": -0.1}, "key 'l_m' must be in [0, pi/2), got -0.1"),
    ("magface", {"lambda_g": -1.0}, "key 'lambda_g' must be >= 0"),
    ("elasticface_arc", {"sigma": -0.01}, "key 'sigma' must be >= 0 (a standard deviation), got -0.01"),
    ("elasticface_cos", {"sigma": -0.05}, "key 'sigma' must be >= 0 (a standard deviation), got -0.05"),
    ("elasticface_cos", {"margin": -0.35}, "key 'margin' must be >= 0"),
    ("subcenter", {"margin": 3.0}, "key 'margin' must be in [0, pi/2), got 3.0"),
]


def test_every_head_of_the_issue_is_registered():
    assert EXPECTED <= set(BUILTIN)


@pytest.mark.parametrize("name, options, message", BAD)
def test_out_of_range_options_are_refused_with_one_clear_line(name, options, message):
    _, problems = build_options(PLUGINS.get("head", name).options, options, f"exp.toml [head] (head '{name}')")
    assert len(problems) == 1 and "\n" not in problems[0]
    assert problems[0].startswith(f"exp.toml [head] (head '{name}'): ") and message in problems[0], problems


@pytest.mark.parametrize("name", BUILTIN)
def test_defaults_are_valid_and_cite_their_source(name):
    comp = PLUGINS.get("head", name)
    assert build_options(comp.options, {}, name)[1] == []
    summary_and_help = comp.summary + " ".join(i.help for i in describe_options(comp.options))
    assert any(word in summary_and_help for word in ("et al.", "paper", "InsightFace")), name
    assert any(year in comp.summary for year in ("2017", "2018", "2019", "2020", "2021", "2022")), comp.summary


def test_magface_lambda_bound_in_the_help_is_the_computed_one():
    assert min_lambda_g(MagFaceOptions()) == pytest.approx(22.59, abs=0.01)
    help_text = {i.name: i.help for i in describe_options(MagFaceOptions)}["lambda_g"]
    assert "22.6" in help_text


@pytest.mark.parametrize("experiment, problem", [
    ({}, None),                                                    # no [classifier] table (core of today)
    ({"classifier": {"type": "full", "subcenters": 3}}, None),
    ({"classifier": {"type": "full", "subcenters": 1}}, "got 1"),
    ({"classifier": {"type": "full"}}, "needs [classifier] key 'subcenters' = K > 1"),
    (types.SimpleNamespace(classifier=types.SimpleNamespace(subcenters=3)), None),   # attribute access
    (types.SimpleNamespace(classifier=types.SimpleNamespace(subcenters=0)), "got 0"),
])
def test_subcenter_checks_the_classifier_subcenters(experiment, problem):
    comp = PLUGINS.get("head", "subcenter")
    problems = comp.check(comp.options(), experiment)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0] and "the paper uses K = 3" in problems[0]


def test_bad_head_option_in_an_experiment_names_file_table_and_key(write_toml, tmp_path):
    path = write_toml(f"""
[data]
train = "{tmp_path}"
[backbone]
type = "iresnet18"
[head]
type = "adaface"
h = 2.0
""")
    with pytest.raises(ConfigError) as info:
        load_experiment(path, plugins=PLUGINS)
    assert info.value.problems == [f"{path} [head] (head 'adaface'): key 'h' must be in [0, 1], got 2.0"]


@pytest.mark.parametrize("name, shows", [("adaface", ["default 0.333", "Kim et al., CVPR 2022"]),
                                         ("magface", ["default 110.0", "Meng et al., CVPR 2021"]),
                                         ("elasticface_arc", ["default 0.05", "Boutros et al."])])
def test_describe_shows_published_defaults_and_source(name, shows):
    result = facebone("describe", "head", name)
    assert result.returncode == 0, result.stderr
    for text in shows:
        assert text in result.stdout
