"""The training state: everything a resume needs, saved in one checkpoint and restored exactly.

A checkpoint is one safetensors file (written by rank 0, atomically, same content -> same bytes):

- ``model.*``, ``classifier.*``, ``head.*``, ``objective.*``: state dicts. The classifier's
  row-sharded tensors (class centres and anything else with one row per local class) are gathered
  into the full ``(C, ...)`` matrix on save and cut to this rank's rows on load, so the world size
  may change between save and resume.
- ``optimizer.<parameter name>.<key>``: the optimiser's per-parameter state (momentum, Adam
  moments), classifier rows gathered the same way;
- ``rng.<rank>.*``: every rank's Python, NumPy, torch CPU and CUDA generator states (loader
  workers hold none that matters: augmentation is fixed by the sampler's per-sample seeds);
- metadata ``training_state``: position (optimiser step, epoch, micro-batch within the epoch),
  non-finite counters, scheduler, optimiser hyper-parameters, loss scaler, the results so far.

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
"""The module whose row-sharded tensors are gathered on save and resharded on load."""


@dataclasses.dataclass
class Position:
    """Where training stands: optimiser steps done, the epoch, micro-batches done in it."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    nonfinite_total: int = 0
    nonfinite_run: int = 0


def row_shard(module: nn.Module) -> tuple[int, int, int] | None:
    """``(class_start, num_local, num_classes)`` of a classifier, or None if it is not row-sharded."""
    try:
        return int(module.class_start), int(module.num_local), int(module.num_classes)  # type: ignore[arg-type]
    except (AttributeError, TypeError):
        return None


class TrainingState:
    """Saves and restores the whole training state of one rank; :meth:`save` is a collective."""

    def __init__(self, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer, scheduler: Any,
                 precision: Any, ranks: Ranks):
        self.modules = {k: m for k, m in modules.items() if m is not None}
        self.optimizer, self.scheduler, self.precision, self.ranks = optimizer, scheduler, precision, ranks
        self.position = Position()
        self.results: dict[str, Any] = {}
        self.param_names = {id(p): f"{prefix}.{name}" for prefix, m in self.modules.items()
                            for name, p in m.named_parameters()}
        self.shard = row_shard(self.modules[SHARDED]) if SHARDED in self.modules else None
        self.counts = dist.all_gather_object(self.shard[1] if self.shard else 0)

    # -- what is row-sharded --------------------------------------------------------------
    def _is_rows(self, prefix: str, tensor: torch.Tensor) -> bool:
        return (prefix == SHARDED and self.shard is not None and tensor.dim() > 0
                and tensor.shape[0] == self.shard[1])

    def _full(self, prefix: str, tensor: torch.Tensor) -> torch.Tensor | None:
        """The tensor as saved (rows gathered on rank 0); None on ranks other than 0."""
        tensor = tensor.detach()
        if self._is_rows(prefix, tensor) and self.ranks.distributed:
            tensor = dist.gather_rows(tensor.contiguous(), self.counts)
        elif not self.ranks.is_main:
            return None
        return tensor.to("cpu").contiguous().clone() if tensor is not None else None

    def _local(self, prefix: str, saved: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a saved full classifier tensor (other tensors as they are)."""
        if (prefix == SHARDED and self.shard is not None and like.dim() > 0 and like.shape[0] == self.shard[1]
                and saved.dim() > 0 and saved.shape[0] == self.shard[2]):
            start, count, _ = self.shard
            return saved[start:start + count]
        return saved

    # -- save ----------------------------------------------------------------------------
    def save(self, path: Path, metadata: dict[str, Any]) -> Path | None:
        """Write the state to ``path`` (rank 0; every rank must call this). Returns the path on rank 0."""
        tensors: dict[str, torch.Tensor] = {}

        def put(key: str, value: torch.Tensor | None) -> None:
            if value is not None:
                tensors[key] = value

        for prefix, module in self.modules.items():
            for key, value in module.state_dict().items():
                put(f"{prefix}.{key}", self._full(prefix, value))
        state = self.optimizer.state_dict()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        groups = []
        for group, saved_group in zip(self.optimizer.param_groups, state["param_groups"]):
            hyper = {k: v for k, v in saved_group.items() if k != "params"}
            hyper["params"] = [self.param_names[id(p)] for p in group["params"]]
            groups.append(hyper)
        extra: dict[str, dict[str, Any]] = {}
        for index, param in enumerate(params):
            name = self.param_names[id(param)]
            prefix = name.split(".", 1)[0]
            for key, value in sorted(state["state"].get(index, {}).items()):
                if isinstance(value, torch.Tensor):
                    put(f"optimizer.{name}.{key}", self._full(prefix, value))
                else:
                    extra.setdefault(name, {})[key] = value
        rngs = dist.all_gather_object(capture_rng(self.ranks.device))
        python_rng = {}
        for rank, rng in enumerate(rngs):
            for key, value in rng["tensors"].items():
                put(f"rng.{rank}.{key}", value if self.ranks.is_main else None)
            python_rng[str(rank)] = rng["other"]
        if not self.ranks.is_main:
            return None
        training = {
            "position": dataclasses.asdict(self.position),
            "world_size": self.ranks.world_size,
            "scheduler": self.scheduler.state_dict(),
            "optimizer": {"param_groups": groups, "state": extra},
            "scaler": self.precision.state_dict(),
            "rng": python_rng,
            "results": self.results,
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
        device = self.ranks.device
        for prefix, module in self.modules.items():
            own = module.state_dict()
            state = {}
            for key, like in own.items():
                full = f"{prefix}.{key}"
                if full not in tensors:
                    raise DataError(f"{path}: checkpoint has no {full}; it was written for another experiment")
                state[key] = self._local(prefix, tensors[full], like)
            module.load_state_dict(state, strict=True)
        self._load_optimizer(tensors, training["optimizer"], path)
        self.scheduler.load_state_dict(training["scheduler"])
        self.precision.load_state_dict(training["scaler"])
        rank = str(self.ranks.rank) if str(self.ranks.rank) in training["rng"] else "0"
        rng_tensors = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"rng.{rank}.")}
        restore_rng({"tensors": rng_tensors, "other": training["rng"][rank]}, device)
        self.position = Position(**training["position"])
        self.results = training["results"]
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
        for name, i in index.items():
            prefix = name.split(".", 1)[0]
            entry: dict[str, Any] = dict(saved["state"].get(name, {}))
            head = f"optimizer.{name}."
            for key, value in tensors.items():
                if key.startswith(head):
                    entry[key[len(head):]] = self._local(prefix, value, params[i])
            if entry:
                state[i] = entry
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})


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
