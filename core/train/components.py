"""What a training run is made of, built from a validated experiment for one rank: the data
(training set, global-batch sampler, loader), the model (warp + backbone, wrapped in DDP under
several processes), the classifier (sharded over ranks), the head, the objective (and its frozen
teacher), the stage's starting point (``init_from``, ``classifier_from``, ``freeze``, applied before
DDP and the optimiser see the parameters), the optimiser and its schedule, and the numerics
(:class:`~facebone.train.precision.Precision`).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import torch
from torch import nn

from facebone.data.global_batches import GlobalBatchSampler, make_batch_loader
from facebone.errors import ConfigError
from facebone.model.build import build_model
from facebone.model.face_model import FaceModel
from facebone.train.classifier import build_classifier
from facebone.train.dist import Ranks
from facebone.train.objective import build_objective
from facebone.train.optim import make_optimizer, make_schedule
from facebone.train.precision import Precision
from facebone.train.runtime import seed_everything
from facebone.train.stages import prepare_stage
from facebone.train.state import is_sharded


@dataclasses.dataclass
class TrainingParts:
    """The built components of one rank's training run."""

    dataset: Any
    sampler: GlobalBatchSampler
    loader: Any
    model: nn.Module            # what the objective calls: DDP(warp + backbone) under several processes
    face_model: FaceModel       # the unwrapped warp + backbone (saved, evaluated)
    classifier: nn.Module
    head: nn.Module
    objective: nn.Module
    teacher: nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    precision: Precision
    total_steps: int

    @property
    def modules(self) -> dict[str, nn.Module]:
        """The modules whose state a checkpoint holds, by checkpoint prefix."""
        return {"model": self.face_model, "classifier": self.classifier, "head": self.head,
                "objective": self.objective}

    @functools.cached_property
    def sharded_params(self) -> list[nn.Parameter]:
        """Parameters each rank holds a different part of (a row-sharded classifier's)."""
        if not is_sharded(self.classifier):
            return []
        return [p for p in self.classifier.parameters() if p.requires_grad]

    @functools.cached_property
    def replicated_params(self) -> list[nn.Parameter]:
        """Parameters every rank holds whole, with the same gradient once synchronised."""
        modules = [self.face_model, self.head, self.objective]
        if not is_sharded(self.classifier):
            modules.insert(1, self.classifier)
        return [p for m in modules for p in m.parameters() if p.requires_grad]

    @functools.cached_property
    def step_buffers(self) -> list[torch.Tensor]:
        """Buffers a forward pass updates (batch-norm statistics, head state): put back after a skipped step."""
        return [b for m in (self.face_model, self.head) for b in m.buffers()]


def open_data(exp: Any, ranks: Ranks, log: Callable[[str], None] = print) -> tuple[Any, GlobalBatchSampler, Any]:
    """The training set (checked against the experiment), this rank's global-batch sampler and its loader."""
    from facebone.data import open_training_set
    from facebone.data.checks import check_training_set

    train = exp.train
    from facebone.data.dataset import Degradation

    degradation = Degradation.from_table(exp.degrade) if exp.degrade is not None else None
    dataset = open_training_set(exp.data.train, image_size=exp.data.image_size, hflip=exp.data.hflip,
                                skip_corrupt=exp.data.skip_corrupt, degradation=degradation)
    for note in check_training_set(dataset, exp):  # size mismatch refused; skipped files, wrong property
        log(note)
    needed = train.batch_size * train.accumulate
    if len(dataset) < needed:
        what = "batch_size" if train.accumulate == 1 else "batch_size x accumulate"
        raise ConfigError(f"{exp.source} [train] {what}: {needed} is larger than the {len(dataset)} training "
                          f"images in {exp.data.train}")
    sampler = GlobalBatchSampler(len(dataset), train.batch_size, seed=exp.experiment.seed, rank=ranks.rank,
                                 world_size=ranks.world_size, accumulate=train.accumulate)
    loader = make_batch_loader(dataset, sampler, num_workers=exp.data.num_workers,
                               pin_memory=ranks.device.type == "cuda", seed=exp.experiment.seed)
    return dataset, sampler, loader


def wrap_ddp(model: nn.Module, ranks: Ranks) -> nn.Module:
    """``model`` in DistributedDataParallel under several processes (itself otherwise)."""
    if not ranks.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ranks.device.index] if ranks.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def build_parts(exp: Any, ranks: Ranks, *, log: Callable[[str], None] = print) -> TrainingParts:
    """Every component of ``exp``'s training run on this rank, seeded by ``[experiment] seed``."""
    train = exp.train
    precision = Precision(train.precision, ranks.device, channels_last=train.channels_last,
                          distributed=ranks.distributed)
    seed_everything(exp.experiment.seed, train.deterministic)
    dataset, sampler, loader = open_data(exp, ranks, log)
    num_classes = dataset.num_classes
    face_model = precision.prepare_model(build_model(exp))
    classifier = build_classifier(exp.classifier, num_classes=num_classes, embedding_size=exp.embedding_size,
                                  seed=exp.experiment.seed, device=ranks.device)
    head = exp.head.build(num_classes=num_classes, embedding_size=exp.embedding_size,
                          seed=exp.experiment.seed).to(ranks.device)
    objective, teacher = build_objective(exp, num_classes=num_classes, device=ranks.device)
    modules = {"model": face_model, "classifier": classifier, "head": head, "objective": objective}
    trains = prepare_stage(exp, modules, log=log)  # init_from, classifier_from, freeze: before DDP and the optimiser
    log(f"parameters: {trains.line()}")
    model = wrap_ddp(face_model, ranks)
    params = [p for m in (face_model, classifier, head, objective) for p in m.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, train)
    steps_per_epoch = sampler.steps_per_epoch
    total = steps_per_epoch * train.epochs
    if train.max_steps > 0:
        total = min(total, train.max_steps)
    scheduler = make_schedule(optimizer, train, steps_per_epoch, total)
    return TrainingParts(dataset=dataset, sampler=sampler, loader=loader, model=model, face_model=face_model,
                         classifier=classifier, head=head, objective=objective, teacher=teacher, optimizer=optimizer,
                         scheduler=scheduler, precision=precision, total_steps=total)
