"""[train] accumulate = k: the gradient of k batches equals that of one k-times batch."""
import json

from facebone.weights.checkpoint import read_checkpoint
from train_testing import experiment_dict, max_difference, tensors, train_in_process

NO_BATCH_NORM = {"type": "thirdnet", "width": 8, "embedding_size": 16}


def run(wide_set, tmp_path, plugins, name, **train):
    raw = experiment_dict(wide_set, tmp_path / "runs", name=name, backbone=NO_BATCH_NORM, lr=0.1, epochs=1, **train)
    raw["data"]["image_size"] = 16
    return train_in_process(raw, tmp_path / name, plugins)


def test_two_batches_of_64_equal_one_batch_of_128(wide_set, tmp_path, plugins_with_thirdnet):
    big = run(wide_set, tmp_path, plugins_with_thirdnet, "big", batch_size=128)
    accumulated = run(wide_set, tmp_path, plugins_with_thirdnet, "acc", batch_size=64, accumulate=2)
    small = run(wide_set, tmp_path, plugins_with_thirdnet, "small", batch_size=64)
    a, b, c = tensors(big), tensors(accumulated), tensors(small)
    print("accumulation: max |difference| model", max_difference(a, b, "model."), "classifier",
          max_difference(a, b, "classifier."))
    assert max_difference(a, b, "model.") <= 1e-6
    assert max_difference(a, b, "classifier.") <= 1e-6
    assert max_difference(a, c, "model.") > 1e-3  # without accumulation batch 64 trains differently
    state = [json.loads(read_checkpoint(p)[1]["training_state"]) for p in (big, accumulated, small)]
    assert [s["position"]["step"] for s in state] == [3, 3, 6]  # the schedule counts optimiser steps
    assert state[0]["scheduler"]["last_epoch"] == state[1]["scheduler"]["last_epoch"] == 3
    assert state[0]["optimizer"]["param_groups"][0]["lr"] == state[1]["optimizer"]["param_groups"][0]["lr"]
