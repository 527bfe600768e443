"""Learning-rate curves of every [train] lr_schedule, per step and per epoch, against their formulas."""
from __future__ import annotations

import math

import pytest

from facebone.experiment.schema import TrainTable
from facebone.plugin.options import build_options
from facebone.train.optim import schedule_lambda


def curve(steps_per_epoch: int, total: int, **train) -> list[float]:  # type: ignore[no-untyped-def]
    table, problems = build_options(TrainTable, train, "[train]")
    assert not problems, problems
    f = schedule_lambda(table, steps_per_epoch, total)
    return [f(s) for s in range(total)]


def test_warmup_then_polynomial_decay() -> None:
    lr = curve(4, 12, warmup_epochs=1.0, lr_power=2.0)
    assert lr[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lr[8] == pytest.approx((1 - 4 / 8) ** 2) and lr[11] == pytest.approx((1 - 7 / 8) ** 2)
    assert curve(10, 10, lr_power=1.0)[5] == pytest.approx(0.5)


def test_cosine() -> None:
    lr = curve(5, 20, lr_schedule="cosine", warmup_epochs=1.0)
    assert lr[:5] == [0.2, 0.4, 0.6, 0.8, 1.0]
    for step in range(5, 20):
        assert lr[step] == pytest.approx(0.5 * (1 + math.cos(math.pi * (step - 5) / 15)))


def test_multistep_at_epoch_milestones() -> None:  # ibug / AdaFace style: x0.1 at epochs 2 and 3
    lr = curve(10, 40, lr_schedule="multistep", lr_milestones=[2, 3], lr_gamma=0.1)
    assert lr[:20] == [1.0] * 20
    assert lr[20:30] == pytest.approx([0.1] * 10) and lr[30:] == pytest.approx([0.01] * 10)


def test_per_epoch_stepping_holds_the_lr_through_each_epoch() -> None:
    lr = curve(4, 16, lr_schedule="poly", lr_power=1.0, lr_step_unit="epoch")
    assert lr == pytest.approx([1.0] * 4 + [0.75] * 4 + [0.5] * 4 + [0.25] * 4)
    cos = curve(4, 16, lr_schedule="cosine", lr_step_unit="epoch")
    assert len(set(cos[:4])) == len(set(cos[4:8])) == 1 and cos[4] < cos[0]


@pytest.mark.parametrize("train, message", [
    ({"lr_schedule": "multistep"}, "lr_milestones"),
    ({"lr_milestones": [5, 3]}, "increasing"),
    ({"lr_gamma": 1.5}, "lr_gamma"),
    ({"lr_schedule": "linear"}, "lr_schedule"),
])
def test_bad_schedule_options(train: dict, message: str) -> None:
    _, problems = build_options(TrainTable, train, "[train]")
    assert problems and message in problems[0]
