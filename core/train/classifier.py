"""The classifier the core owns: class centres, sharded over ranks, and Partial FC sampling.

``[classifier] type = "full" | "partial_fc"``, ``sample_rate``, ``subcenters``.

Sharding. The ``C`` classes are split into contiguous ranges over the ``W`` ranks; the first
``C mod W`` ranks get one class more (:func:`shard_range`). Rank ``r`` holds ``weight`` of
shape ``(C_local * K, D)``: the ``K`` sub-centres of local class ``c`` are rows ``c*K ..
c*K + K - 1``. The initial centres are ``N(0, 0.01)`` drawn per block of classes from ``seed``,
so they do not depend on the world size: the shards of a W-rank run are the slices of the
1-rank matrix. In one process the shard is the whole matrix.

Forward. ``classifier(embeddings (n, D), labels (n,)) -> (cosine (N, C_sel), labels_local (N,),
norms (N, 1))``: embeddings and labels are all-gathered (``N = W * n``, the global batch; the
gradient of a rank's embeddings flows back to that rank, times W for DDP's averaging, see
:mod:`facebone.train.collectives`); ``labels_local`` is the column of each row's class among
the ``C_sel`` columns, ``-1`` where it is not among them (another rank's class). With K > 1
the cosine of a class is the max over its K sub-centres (sub-center ArcFace), so every head
works unchanged. ``type = "full"`` scores every local class; ``"partial_fc"`` with
``sample_rate < 1`` (in training mode) scores every class that is a positive of the global
batch on this rank plus random negatives, ``int(sample_rate * C_local)`` columns in all (only
the positives when they are more), sorted by class. The draws come from a generator seeded by
``(seed, rank, step)``; the step counter is the buffer ``sample_step``, so a checkpoint
restores the stream exactly. Unsampled centres get a zero gradient (as arcface_torch v2).

``classifier.cross_entropy(logits, labels_local)``: mean cross-entropy over the global batch,
the softmax spanning every rank (global max, global sum); plain cross-entropy in one process.
Its value is the same on every rank. Gradients, for the loop: the centres' gradient on each rank
is that of the global loss (no reduction needed, the classifier is not wrapped in DDP); the
embeddings' gradient is W times that of the global loss, so that DDP's averaging over ranks gives
the backbone the global gradient. A loss term every rank computes identically from the gathered
rows (e.g. a head's ``loss_terms(norms)``) must pass through ``collectives.replicated``. The
centres differ between ranks, so a global gradient norm (clipping) sums their squared norm over
ranks.

Checkpoints, any world size:

- ``state_dict()`` is this rank's shard (``weight``, ``sample_step``). ``load_state_dict``
  accepts a shard or the whole ``(C*K, D)`` matrix, which it slices to this rank's rows.
- ``full_state(dst=0)`` (collective: every rank calls it) returns the whole state on rank
  ``dst`` (every rank with ``dst=None``) and ``None`` elsewhere; ``load_full_state(state)``
  takes this rank's rows of it (``state["weight"]`` may be any row-sliceable object, e.g. a
  safetensors slice, so no rank needs the whole matrix in memory).
- In a checkpoint the whole matrix is ``classifier.weight`` (what one process saves; what
  ``[train] classifier_from`` reads), the step counter ``classifier.sample_step``.
- ``full_optimizer_state(optimizer, dst=0)`` / ``load_full_optimizer_state(optimizer,
  state)``: the same for the optimiser's per-parameter state of ``weight`` (SGD's
  ``momentum_buffer``, AdamW's ``exp_avg``/``exp_avg_sq``: tensors shaped like ``weight`` are
  gathered or sliced, the rest, e.g. ``step``, kept as it is). Save the optimiser's other state
  as usual and put this one in the checkpoint in its full form; after ``optimizer.load_state_dict``
  call ``load_full_optimizer_state`` to replace the classifier's entry.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from facebone.train.collectives import distributed_cross_entropy, gather_rows, world
from facebone.train.cosine import cosine_to_rows

INIT_BLOCK = 4096
"""Classes per block of the initial draw (one seeded generator per block)."""


def shard_range(num_classes: int, world_size: int, rank: int) -> tuple[int, int]:
    """``(first class, number of classes)`` of ``rank``: contiguous, the first ``C mod W`` one more."""
    base, extra = divmod(num_classes, world_size)
    return base * rank + min(rank, extra), base + (1 if rank < extra else 0)


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps); stable across processes and runs."""
    state = 0x9E3779B97F4A7C15
    for v in values:
        state = (state ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return state & 0x7FFFFFFFFFFFFFFF


def initial_centres(seed: int, start: int, count: int, subcenters: int, embedding_size: int,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """``N(0, 0.01)`` rows of classes ``start .. start+count-1``, independent of how classes are
    sharded and of ``device`` (drawn on the CPU block by block, written into a ``device`` tensor)."""
    out = torch.empty(count * subcenters, embedding_size, device=device)
    first_block, last_block = start // INIT_BLOCK, (start + count - 1) // INIT_BLOCK if count else -1
    generator = torch.Generator()
    for block in range(first_block, last_block + 1):
        generator.manual_seed(_mix(seed, 0xC1A55, block))
        values = torch.randn(INIT_BLOCK * subcenters, embedding_size, generator=generator).mul_(0.01)
        lo, hi = max(start, block * INIT_BLOCK), min(start + count, (block + 1) * INIT_BLOCK)
        out[(lo - start) * subcenters:(hi - start) * subcenters] = \
            values[(lo - block * INIT_BLOCK) * subcenters:(hi - block * INIT_BLOCK) * subcenters]
    return out


def _slice_full_weight(module: "Classifier", state: dict, prefix: str, *args: Any) -> None:
    """load_state_dict pre-hook: a whole ``(C*K, D)`` matrix becomes this rank's rows."""
    key = prefix + "weight"
    value = state.get(key)
    if (isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[0] == module.full_rows
            and module.full_rows != module.weight.shape[0]):
        state[key] = module.shard_rows(value)


class Classifier(nn.Module):
    """This rank's class centres; see the module docstring for the whole contract."""

    def __init__(self, num_classes: int, embedding_size: int, *, type: str = "full", sample_rate: float = 1.0,
                 subcenters: int = 1, seed: int = 0, rank: int | None = None, world_size: int | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        if type not in ("full", "partial_fc"):
            raise ValueError(f"classifier type must be 'full' or 'partial_fc', got {type!r}")
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        if type == "full" and sample_rate != 1:
            raise ValueError("sample_rate < 1 needs type = 'partial_fc'")
        if subcenters < 1 or num_classes < 1 or embedding_size < 1:
            raise ValueError("num_classes, embedding_size and subcenters must be positive")
        found_rank, found_size = world()
        self.rank = found_rank if rank is None else rank
        self.world_size = found_size if world_size is None else world_size
        self.num_classes, self.embedding_size, self.subcenters = num_classes, embedding_size, subcenters
        self.type, self.sample_rate, self.seed = type, float(sample_rate), seed
        self.class_start, self.num_local = shard_range(num_classes, self.world_size, self.rank)
        self.num_sample = int(self.sample_rate * self.num_local)
        self.weight = nn.Parameter(initial_centres(seed, self.class_start, self.num_local, subcenters, embedding_size,
                                                   device))
        self.register_buffer("sample_step", torch.zeros((), dtype=torch.int64, device=device))
        self._generator: torch.Generator | None = None
        self.register_load_state_dict_pre_hook(_slice_full_weight)

    @property
    def sampling(self) -> bool:
        """True when a training step scores a sample of the local classes."""
        return self.type == "partial_fc" and self.sample_rate < 1 and self.training

    # -- forward -------------------------------------------------------------------------
    def local_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Global class ids -> this shard's column, -1 for classes of other ranks."""
        local = labels - self.class_start
        return torch.where((local >= 0) & (local < self.num_local), local, torch.full_like(local, -1))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        embeddings = gather_rows(embeddings.to(self.weight.dtype))
        labels = gather_rows(labels.long())
        norms = torch.linalg.vector_norm(embeddings, dim=1, keepdim=True)
        local = self.local_labels(labels)
        weight = self.weight
        if self.sampling:
            index, local = self._sample(local)
            weight = weight.view(self.num_local, self.subcenters, self.embedding_size)[index]
            weight = weight.view(-1, self.embedding_size)
        with torch.autocast(embeddings.device.type, enabled=False):
            cosine = cosine_to_rows(embeddings, weight)
        if self.subcenters > 1:
            cosine = cosine.view(cosine.shape[0], -1, self.subcenters).amax(dim=2)
        return cosine, local, norms

    @staticmethod
    def cross_entropy(logits: torch.Tensor, labels_local: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the global batch, the softmax spanning every rank's columns."""
        return distributed_cross_entropy(logits, labels_local)

    def _sample(self, local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sorted class indices to score (every positive, then random negatives) and remapped labels."""
        with torch.no_grad():
            device = self.weight.device
            positive = torch.zeros(self.num_local, dtype=torch.bool, device=device)
            positive[local[local >= 0]] = True
            if self.num_sample > int(positive.sum()):
                score = torch.rand(self.num_local, generator=self._draws(), device=device)
                score[positive] = 2.0
                index = score.topk(self.num_sample, sorted=False).indices.sort().values
            else:
                index = torch.nonzero(positive).squeeze(1)
            self.sample_step += 1
            remapped = torch.searchsorted(index, local.clamp_min(0))
            return index, torch.where(local >= 0, remapped, local)

    def _draws(self) -> torch.Generator:
        device = self.weight.device
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
        self._generator.manual_seed(_mix(self.seed, self.rank, int(self.sample_step)))
        return self._generator

    # -- state across world sizes -------------------------------------------------------
    @property
    def full_rows(self) -> int:
        return self.num_classes * self.subcenters

    def shard_rows(self, full: Any) -> torch.Tensor:
        """This rank's rows of a whole-matrix tensor (or row-sliceable object)."""
        k = self.subcenters
        rows = full[self.class_start * k:(self.class_start + self.num_local) * k]
        return rows if isinstance(rows, torch.Tensor) else torch.as_tensor(rows)

    def _gather_full(self, shard: torch.Tensor, dst: int | None) -> torch.Tensor | None:
        if self.world_size == 1:
            return shard.detach().clone()
        k, biggest = self.subcenters, shard_range(self.num_classes, self.world_size, 0)[1]
        padded = shard.new_zeros((biggest * k, *shard.shape[1:]))
        padded[:shard.shape[0]] = shard.detach()
        if dst is None:
            parts = [torch.empty_like(padded) for _ in range(self.world_size)]
            dist.all_gather(parts, padded)
        else:
            parts = [torch.empty_like(padded) for _ in range(self.world_size)] if self.rank == dst else None
            dist.gather(padded, parts, dst=dst)
            if parts is None:
                return None
        counts = [shard_range(self.num_classes, self.world_size, r)[1] * k for r in range(self.world_size)]
        return torch.cat([p[:n] for p, n in zip(parts, counts)])

    def full_state(self, dst: int | None = 0) -> dict[str, torch.Tensor] | None:
        """The whole ``{"weight": (C*K, D), "sample_step": ()}`` on rank ``dst`` (all with None); collective."""
        weight = self._gather_full(self.weight, dst)
        if weight is None:
            return None
        return {"weight": weight, "sample_step": self.sample_step.detach().clone()}

    def load_full_state(self, state: dict[str, Any]) -> None:
        """Load this rank's rows of a whole state (from :meth:`full_state`, any world size)."""
        weight = self.shard_rows(state["weight"])
        if tuple(weight.shape) != tuple(self.weight.shape):
            raise ValueError(f"classifier state gives rank {self.rank} {tuple(weight.shape)} centres, it holds "
                             f"{tuple(self.weight.shape)} (of {self.full_rows} x {self.embedding_size})")
        with torch.no_grad():
            self.weight.copy_(weight)
            if "sample_step" in state:
                self.sample_step.copy_(torch.as_tensor(state["sample_step"]))

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer, dst: int | None = 0) -> dict[str, Any] | None:
        """The optimiser's state of ``weight`` with whole-matrix tensors, on rank ``dst``; collective."""
        entry = optimizer.state.get(self.weight, {})
        out: dict[str, Any] = {}
        for name in sorted(entry):
            value = entry[name]
            if isinstance(value, torch.Tensor) and value.shape == self.weight.shape:
                value = self._gather_full(value, dst)
            elif isinstance(value, torch.Tensor):
                value = value.detach().clone()
            out[name] = value
        return None if (self.world_size > 1 and dst is not None and self.rank != dst) else out

    def load_full_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """Replace the optimiser's state of ``weight`` by this rank's rows of a whole one."""
        entry: dict[str, Any] = {}
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[0] == self.full_rows:
                value = self.shard_rows(value)
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                value = value.to(self.weight.device, self.weight.dtype).clone()
            entry[name] = value
        optimizer.state[self.weight] = entry

    def extra_repr(self) -> str:
        return (f"type={self.type}, classes={self.num_classes} (local {self.class_start}.."
                f"{self.class_start + self.num_local - 1}), embedding_size={self.embedding_size}, "
                f"subcenters={self.subcenters}, sample_rate={self.sample_rate}, rank={self.rank}/{self.world_size}")


def build_classifier(table: Any, *, num_classes: int, embedding_size: int, seed: int,
                     device: torch.device | str | None = None) -> Classifier:
    """The classifier of an experiment's validated ``[classifier]`` table, its centres on ``device``."""
    return Classifier(num_classes, embedding_size, type=table.type, sample_rate=table.sample_rate,
                      subcenters=table.subcenters, seed=seed, device=device)
