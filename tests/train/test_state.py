"""The training state: what a checkpoint holds and how it comes back, on another world size too."""
from __future__ import annotations

import json
import random

import numpy as np
import torch
from torch import nn

from facebone.train.classifier import Classifier, shard_range
from facebone.train.dist import Ranks
from facebone.train.optim import make_optimizer
from facebone.train.precision import Precision
from facebone.train.state import TrainingState
from facebone.weights.checkpoint import read_checkpoint


class Table:
    optimizer, lr, momentum, weight_decay = "sgd", 0.1, 0.9, 5e-4


def parts(rank: int = 0, world: int = 1):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    classifier = Classifier(11, 3, seed=7, rank=rank, world_size=world)
    optimizer = make_optimizer(list(model.parameters()) + list(classifier.parameters()), Table)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    ranks = Ranks(rank=rank, world_size=world)
    state = TrainingState({"model": model, "classifier": classifier}, optimizer, scheduler,
                          Precision("fp32", torch.device("cpu")), ranks)
    return model, classifier, optimizer, scheduler, state


def test_one_process_checkpoint_resumes_on_each_rank_of_two_with_its_rows(tmp_path):
    model, classifier, optimizer, scheduler, state = parts()
    for _ in range(3):
        loss = model(torch.randn(5, 4)).sum() + classifier.weight.square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    state.position.step, state.position.epoch, state.position.batch = 3, 1, 2
    state.results = {"metrics": {"a": 0.5}}
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = state.save(tmp_path / "step.safetensors", {"experiment": "t"})
    expected = (random.random(), np.random.rand(), torch.rand(()).item())
    tensors, meta = read_checkpoint(path)
    assert json.loads(meta["training_state"])["position"] == {"step": 3, "epoch": 1, "batch": 2, "nonfinite_total": 0,
                                                             "nonfinite_run": 0}
    assert tensors["classifier.weight"].shape == (11, 3)
    assert tensors["optimizer.classifier.weight.momentum_buffer"].shape == (11, 3)
    full_momentum = optimizer.state[classifier.weight]["momentum_buffer"]
    for rank in (0, 1):
        random.seed(9), np.random.seed(9), torch.manual_seed(9)
        model_r, classifier_r, optimizer_r, scheduler_r, state_r = parts(rank, 2)
        state_r.load(path)
        start, count = shard_range(11, 2, rank)
        assert torch.equal(classifier_r.weight, classifier.weight[start:start + count])
        assert torch.equal(optimizer_r.state[classifier_r.weight]["momentum_buffer"],
                           full_momentum[start:start + count])
        assert torch.equal(model_r.weight, model.weight)
        assert torch.equal(optimizer_r.state[model_r.weight]["momentum_buffer"],
                           optimizer.state[model.weight]["momentum_buffer"])
        assert scheduler_r.last_epoch == 3 and optimizer_r.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
        assert (state_r.position.step, state_r.position.batch) == (3, 2) and state_r.results == state.results
        assert (random.random(), np.random.rand(), torch.rand(()).item()) == expected  # rank 0's generators
