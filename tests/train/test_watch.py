"""LossWatch: warns once when the first epoch's loss did not fall, and not otherwise."""
from __future__ import annotations

import math

import pytest

from facebone.train.watch import LossWatch


def _first_warning(losses, steps_per_epoch, total=1000):  # type: ignore[no-untyped-def]
    watch = LossWatch(steps_per_epoch, total)
    found = [w for step, loss in enumerate(losses, 1) if (w := watch.observe(step, loss)) is not None]
    return found


def test_a_loss_that_falls_is_quiet_even_when_noisy():
    assert _first_warning([15.5, 13.2, 9.9, 13.6, 12.8, 10.8, 9.3, 10.9], 8) == []


def test_a_loss_that_does_not_fall_warns_once_at_the_end_of_the_first_epoch():
    losses = [15.5, 11.0, 17.0, 18.1, 12.8, 21.3, 16.5, 17.3] + [30.0] * 8
    [warning] = _first_warning(losses, 8)
    assert "did not fall in the first 8 steps" in warning and "13.2" in warning and "16.9" in warning
    assert "lower [train] lr" in warning


def test_non_finite_and_short_runs():
    assert len(_first_warning([5.0, 5.0, math.nan, math.nan], 4)) == 1
    assert _first_warning([5.0, 6.0, 7.0], 10, total=3) == []  # fewer than 4 steps: no judgement
    assert len(_first_warning([5.0, 6.0, 7.0, 8.0, 9.0], 10, total=5)) == 1  # training shorter than an epoch


def test_report_is_loud():
    lines, warnings = [], []

    class Run:
        def add_warnings(self, w):  # type: ignore[no-untyped-def]
            warnings.extend(w)

    class Bar:
        postfix: dict = {}

    bar = Bar()
    LossWatch.report("WARNING: x", lines.append, Run(), bar)
    assert lines == ["WARNING: x"] and warnings == ["WARNING: x"] and bar.postfix["WARNING"] == "loss not falling"


@pytest.mark.parametrize("steps", [4, 100])
def test_judges_only_the_first_epoch(steps):
    watch = LossWatch(steps, 10 * steps)
    for step in range(1, steps + 1):
        watch.observe(step, 10.0 - step * 0.01)
    assert watch.observe(steps + 1, 99.0) is None and len(watch.losses) == steps
