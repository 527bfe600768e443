"""The training state: everything a resume needs, saved in one checkpoint and restored exactly.

A checkpoint is one safetensors file (written by rank 0, atomically, same content -> same bytes):

- ``model.*``, ``classifier.*``, ``head.*``, ``objective.*``: state dicts. The sharded classifier's
  is its whole state (``full_state``: every rank's rows gathered on rank 0), cut to each rank's
  rows on load (``load_full_state``), so the world size may change between save and resume.
- ``optimizer.<parameter name>.<key>``: the optimiser's per-parameter state (momentum, Adam
  moments), the classifier's whole likewise (``full_optimizer_state``);
- ``rng.<rank>.*``: every rank's Python, NumPy, torch CPU and CUDA generator states (loader
  workers hold none that matters: augmentation is fixed by the sampler's per-sample seeds);
- metadata ``training_state``: position (optimiser step, epoch, micro-batch within the epoch),
  non-finite counters, scheduler, optimiser hyper-parameters, loss scaler, the results so far and
  the losses the loss watch has seen.

``torch.distributed.checkpoint`` was considered: it shines for parameters sharded over many
files, but its even ``Shard(0)`` layout is not Partial FC's (the first ``C mod W`` ranks hold one
more class), and eval/export want a single safetensors file; the classifier is gathered instead.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import random
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from facebone import __version__
from facebone.errors import DataError
from facebone.train import dist
from facebone.train.dist import Ranks
from facebone.weights.checkpoint import read_checkpoint, save_tensors

SHARDED = "classifier"
"""The module whose state is sharded over ranks (saved whole, cut to each rank's rows on load)."""


@dataclasses.dataclass
class Position:
    """Where training stands: optimiser steps done, the epoch, micro-batches done in it."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    nonfinite_total: int = 0
    nonfinite_run: int = 0


def is_sharded(module: nn.Module | None) -> bool:
    """True for a classifier that keeps its state whole-or-sharded itself (``full_state`` and friends:
    the core's :class:`~facebone.train.classifier.Classifier`); other modules are replicated."""
    return module is not None and all(hasattr(module, name) for name in (
        "full_state", "load_full_state", "full_optimizer_state", "load_full_optimizer_state"))


class TrainingState:
    """Saves and restores the whole training state of one rank; :meth:`save` is a collective."""

    def __init__(self, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer, scheduler: Any,
                 precision: Any, ranks: Ranks):
        self.modules = {k: m for k, m in modules.items() if m is not None}
        self.optimizer, self.scheduler, self.precision, self.ranks = optimizer, scheduler, precision, ranks
        self.position = Position()
        self.results: dict[str, Any] = {}
        self.watch: Any = None  # the loss watch (its losses of the first epoch are part of the state)
        self.param_names = {id(p): f"{prefix}.{name}" for prefix, m in self.modules.items()
                            for name, p in m.named_parameters()}
        self.sharded = self.modules[SHARDED] if is_sharded(self.modules.get(SHARDED)) else None

    def _owned_by_sharded(self, name: str) -> bool:
        return self.sharded is not None and name.startswith(SHARDED + ".")

    # -- save ----------------------------------------------------------------------------
    def save(self, path: Path, metadata: dict[str, Any]) -> Path | None:
        """Write the state to ``path`` (rank 0; every rank must call this). Returns the path on rank 0."""
        main = self.ranks.is_main
        tensors: dict[str, torch.Tensor] = {}

        def put(key: str, value: Any) -> None:
            if main and isinstance(value, torch.Tensor):
                tensors[key] = value.detach().to("cpu").contiguous().clone()

        for prefix, module in self.modules.items():
            if module is self.sharded:
                whole = module.full_state(dst=0)  # collective
                for key, value in (whole or {}).items():
                    put(f"{prefix}.{key}", value)
            else:
                for key, value in module.state_dict().items():
                    put(f"{prefix}.{key}", value)
        state = self.optimizer.state_dict()
        groups = []
        for group, saved_group in zip(self.optimizer.param_groups, state["param_groups"]):
            hyper = {k: v for k, v in saved_group.items() if k != "params"}
            hyper["params"] = [self.param_names[id(p)] for p in group["params"]]
            groups.append(hyper)
        extra: dict[str, dict[str, Any]] = {}
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        for index, param in enumerate(params):
            name = self.param_names[id(param)]
            if self._owned_by_sharded(name):
                entry = self.sharded.full_optimizer_state(self.optimizer, dst=0) or {}  # collective
            else:
                entry = state["state"].get(index, {})
            for key, value in sorted(entry.items()):
                if isinstance(value, torch.Tensor):
                    put(f"optimizer.{name}.{key}", value)
                else:
                    extra.setdefault(name, {})[key] = value
        rngs = dist.all_gather_object(capture_rng(self.ranks.device))
        python_rng = {}
        for rank, rng in enumerate(rngs):
            for key, value in rng["tensors"].items():
                put(f"rng.{rank}.{key}", value)
            python_rng[str(rank)] = rng["other"]
        if not main:
            return None
        training = {
            "position": dataclasses.asdict(self.position),
            "world_size": self.ranks.world_size,
            "scheduler": self.scheduler.state_dict(),
            "optimizer": {"param_groups": groups, "state": extra},
            "scaler": self.precision.state_dict(),
            "rng": python_rng,
            "results": self.results,
            "watched_losses": list(self.watch.losses) if self.watch is not None else [],
        }
        meta = {**metadata, "step": self.position.step, "epoch": self.position.epoch, "facebone": __version__,
                "training_state": json.dumps(training, sort_keys=True)}
        return save_tensors(path, tensors, meta)

    # -- load ----------------------------------------------------------------------------
    def load(self, path: Path) -> dict[str, str]:
        """Restore this rank's state from ``path`` (every rank reads it); returns the metadata."""
        tensors, meta = read_checkpoint(path)
        if "training_state" not in meta:
            raise DataError(f"{path}: not a resumable checkpoint (no training state; written by an older facebone)")
        training = json.loads(meta["training_state"])
        for prefix, module in self.modules.items():
            saved = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            missing = sorted(set(module.state_dict()) - set(saved))
            if missing:
                raise DataError(f"{path}: checkpoint has no {prefix}.{missing[0]}; it was written for another "
                                "experiment")
            if module is self.sharded:
                module.load_full_state(saved)
            else:
                module.load_state_dict(saved, strict=True)
        self._load_optimizer(tensors, training["optimizer"], path)
        self.scheduler.load_state_dict(training["scheduler"])
        self.precision.load_state_dict(training["scaler"])
        rank = str(self.ranks.rank) if str(self.ranks.rank) in training["rng"] else "0"
        rng_tensors = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"rng.{rank}.")}
        restore_rng({"tensors": rng_tensors, "other": training["rng"][rank]}, self.ranks.device)
        self.position = Position(**training["position"])
        self.results = training["results"]
        if self.watch is not None:
            self.watch.losses = list(training.get("watched_losses", []))
        return meta

    def _load_optimizer(self, tensors: dict[str, torch.Tensor], saved: dict[str, Any], path: Path) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        index = {self.param_names[id(p)]: i for i, p in enumerate(params)}
        groups = []
        for group in saved["param_groups"]:
            missing = [n for n in group["params"] if n not in index]
            if missing:
                raise DataError(f"{path}: optimiser state for {missing[0]}, which this experiment does not train")
            groups.append({**group, "params": [index[n] for n in group["params"]]})
        if sorted(i for g in groups for i in g["params"]) != list(range(len(params))):
            raise DataError(f"{path}: the checkpoint's optimiser trains other parameters than this experiment")
        state: dict[int, dict[str, Any]] = {}
        whole: dict[str, dict[str, Any]] = {}
        for name, i in index.items():
            entry: dict[str, Any] = dict(saved["state"].get(name, {}))
            head = f"optimizer.{name}."
            entry.update({k[len(head):]: v for k, v in tensors.items() if k.startswith(head)})
            if self._owned_by_sharded(name):
                whole[name] = entry  # whole-matrix tensors: the classifier takes its rows below
            elif entry:
                state[i] = entry
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        for entry in whole.values():
            if entry:
                self.sharded.load_full_optimizer_state(self.optimizer, entry)


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's generator states: tensors (torch CPU/CUDA, NumPy keys, Python) and the rest."""
    version, py_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
               "python": torch.tensor(py_state, dtype=torch.int64)}
    if device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    other = {"python": [version, gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]}
    return {"tensors": tensors, "other": other}


def restore_rng(rng: dict[str, Any], device: torch.device) -> None:
    tensors, other = rng["tensors"], rng["other"]
    torch.set_rng_state(tensors["torch"])
    if device.type == "cuda" and "cuda" in tensors:
        torch.cuda.set_rng_state(tensors["cuda"], device)
    kind, pos, has_gauss, cached = other["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, gauss = other["python"]
    random.setstate((version, tuple(int(x) for x in tensors["python"].tolist()), gauss))


@contextlib.contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Whatever runs inside (an evaluation) leaves every generator of the run as it found it."""
    saved = capture_rng(device)
    try:
        yield
    finally:
        restore_rng(saved, device)
