"""Thresholds at a FAR from saved scores."""
from __future__ import annotations

import json

import numpy as np
import pytest

from facebone.errors import ConfigError, DataError
from facebone.predict.thresholds import run_threshold, threshold_at_far


def test_threshold_lets_through_at_most_far_of_the_impostors_and_is_the_smallest_such() -> None:
    rng = np.random.default_rng(0)
    neg, pos = rng.normal(0, 0.1, 1000), rng.normal(0.6, 0.1, 500)
    labels = np.r_[np.zeros(1000, bool), np.ones(500, bool)]
    scores = np.r_[neg, pos]
    for far in (1e-3, 1e-2, 0.1):
        t, achieved, tar = threshold_at_far(labels, scores, far)
        assert (neg >= t).sum() == int(far * 1000) and achieved == pytest.approx(far)
        assert (neg >= np.nextafter(t, -np.inf)).sum() > far * 1000  # any lower threshold passes one more
        assert tar == pytest.approx((pos >= t).mean())


def test_ties_and_too_few_impostors() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.5, 0.5, 0.2, 0.1, 0.5, 0.9])
    t, achieved, _ = threshold_at_far(labels, scores, 0.25)  # one impostor allowed, but two tie at 0.5
    assert t > 0.5 and achieved == 0.0
    t, achieved, _ = threshold_at_far(labels, scores, 0.5)
    assert t == np.nextafter(0.2, 1) and achieved == 0.5  # the two tied at 0.5 pass, 0.2 does not
    t, achieved, _ = threshold_at_far(labels, scores, 1e-3)
    assert t == np.nextafter(0.5, 1) and achieved == 0.0
    with pytest.raises(DataError, match="no impostor pairs"):
        threshold_at_far(np.ones(3), np.zeros(3), 0.1)


def test_run_threshold_picks_the_pair_set_with_most_impostors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def write(folder: str, evaluator: str, sets: dict) -> None:  # type: ignore[type-arg]
        d = tmp_path / "eval" / folder
        d.mkdir(parents=True)
        entries = {}
        for name, (labels, scores) in sets.items():
            np.save(d / f"{name}_scores.npy", scores)
            np.save(d / f"{name}_labels.npy", labels)
            entries[name] = {"scores": f"{name}_scores.npy", "labels": f"{name}_labels.npy"}
        (d / "summary.json").write_text(json.dumps({"evaluator": evaluator, "metrics": {}, "sets": entries}))

    rng = np.random.default_rng(1)
    write("ijb", "ijb", {"ijbc": (np.r_[np.zeros(5000), np.ones(10)], rng.random(5010))})
    write("verification", "verification", {"lfw": (np.r_[np.zeros(300), np.ones(300)].astype(bool), rng.random(600)),
                                            "agedb": (np.r_[np.zeros(200), np.ones(300)].astype(bool), rng.random(500))})
    t = run_threshold(tmp_path, 1e-2)
    assert t.set_name == "verification/lfw" and t.impostors == 300 and t.resolved
    assert run_threshold(tmp_path, 1e-2, on="ijbc").set_name == "ijb/ijbc"
    assert not run_threshold(tmp_path, 1e-3, on="verification/agedb").resolved
    with pytest.raises(ConfigError, match="no saved score set 'cfp'"):
        run_threshold(tmp_path, 1e-2, on="cfp")
    with pytest.raises(DataError, match="no saved verification scores"):
        run_threshold(tmp_path / "nothing", 1e-2)
