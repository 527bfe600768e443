import dataclasses
from typing import Literal, Optional

import pytest

from facebone import option
from facebone.plugin.options import build_options, check_options_class, describe_options, options_to_dict


@dataclasses.dataclass(frozen=True, kw_only=True)
class Opts:
    pooling: Literal["flatten", "gap", "gwp"] = option("flatten", "pooling")
    dropout: float = option(0.0, "dropout")
    layers: tuple[int, ...] = option((3, 4), "blocks per stage")
    box: tuple[float, float] = option((0.5, 0.5), "centre")
    name: Optional[str] = option(None, "optional name")
    needed: int = option(help="a required key")


def test_build_valid_table_converts_types():
    opts, problems = build_options(Opts, {"pooling": "gwp", "dropout": 1, "layers": [2, 2, 2], "needed": 3}, "f [t]")
    assert problems == []
    assert opts == Opts(pooling="gwp", dropout=1.0, layers=(2, 2, 2), needed=3)
    assert isinstance(opts.dropout, float)


def test_every_problem_is_reported_with_where_and_key():
    _, problems = build_options(Opts, {"poling": "gap", "dropout": "high", "pooling": "max", "box": [1.0],
                                       "layers": [1, "x"]}, "f.toml [backbone]")
    text = "\n".join(problems)
    assert len(problems) == 6
    assert "f.toml [backbone]: unknown key 'poling' (did you mean 'pooling'?)" in text
    assert "key 'dropout' expects float, got 'high'" in text
    assert "key 'pooling' expects 'flatten' | 'gap' | 'gwp', got 'max'" in text
    assert "key 'box' expects [float, float]" in text
    assert "key 'layers' expects list of integer" in text
    assert "missing required key 'needed'" in text


def test_bool_is_not_an_int_and_int_is_not_a_bool():
    _, problems = build_options(Opts, {"needed": True}, "w")
    assert problems and "expects integer" in problems[0]


def test_describe_and_round_trip_to_dict():
    infos = {i.name: i for i in describe_options(Opts)}
    assert infos["pooling"].default == "flatten" and infos["pooling"].help == "pooling"
    assert infos["needed"].required
    d = options_to_dict(Opts(needed=1))
    assert d["layers"] == [3, 4] and d["name"] is None
    opts, problems = build_options(Opts, {k: v for k, v in d.items() if v is not None}, "w")
    assert problems == [] and opts == Opts(needed=1)


def test_post_init_errors_become_problems():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Positive:
        n: int = option(1, "n")

        def __post_init__(self):
            if self.n <= 0:
                raise ValueError("key 'n' must be positive")

    _, problems = build_options(Positive, {"n": -1}, "f [x]")
    assert problems == ["f [x]: key 'n' must be positive"]


def test_check_options_class_rejects_reserved_and_unsupported():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Reserved:
        type: str = "x"

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Weird:
        x: set = dataclasses.field(default_factory=set)

    with pytest.raises(TypeError, match="reserved"):
        check_options_class(Reserved)
    with pytest.raises(TypeError, match="unsupported"):
        check_options_class(Weird)


def test_mutable_default_is_refused():
    with pytest.raises(TypeError, match="mutable"):
        option([1, 2], "x")
