"""facebone's training step against a bare PyTorch loop doing the same arithmetic.

Same model (warp + backbone built from the experiment), same classifier module, same head,
cross-entropy, SGD with momentum and weight decay, gradient clipping, the lr schedule and the same
autocast precision; data already in memory for both (the same pre-made batches). facebone's side
is the real loop (:meth:`facebone.train.loop.Trainer.train`: objective, loss-term reduction,
non-finite check, buffer snapshot, progress and TensorBoard reporting), fed from memory instead of
a DataLoader. The two are timed alternately (ABBA), several rounds, and the seconds per step of
each are compared: ``ratio`` = best round of facebone / best round of the bare loop (goal <= 1.03
for iresnet50 at 112 px), with the median ratio and the ratio of process CPU time beside it (on
a machine shared with other jobs, CPU time is the steadier of the two).

    python benchmarks/trainer_overhead.py --backbone iresnet50 --image-size 112 --batch 64
    python -m torch.distributed.run --nproc_per_node 2 benchmarks/trainer_overhead.py ...   # 2 processes

Under several processes both sides use DDP on the model and the classifier's all-gather; the
global batch is ``--batch``. Prints one JSON object (rank 0).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


class MemorySet:
    """Stands in for a training set: only its size and number of classes are read."""

    def __init__(self, n: int, num_classes: int):
        self.n, self.num_classes = n, num_classes

    def __len__(self) -> int:
        return self.n


def experiment(args: argparse.Namespace, out: Path) -> Any:
    from facebone.experiment.config import validate

    raw = {
        "experiment": {"name": "overhead", "seed": 1, "output_dir": str(out)},
        "data": {"train": str(out), "image_size": args.image_size},
        "backbone": {"type": args.backbone, "embedding_size": 512},
        "head": {"type": "arcface"},
        "train": {"batch_size": args.batch, "epochs": 1, "lr": 0.1, "precision": args.precision,
                  "log_every": 10, "device": args.device, "channels_last": args.channels_last,
                  "num_threads": args.threads},
    }
    return validate(raw, source="benchmark", check_paths=False)


def make_batches(args: argparse.Namespace, ranks: Any, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(ranks.rank)
    local = args.batch // ranks.world_size
    return [(torch.rand(local, 3, args.image_size, args.image_size, generator=g) * 2 - 1,
             torch.randint(0, args.classes, (local,), generator=g)) for _ in range(count)]


def facebone_trainer(exp: Any, ranks: Any, batches: list, out: Path, classes: int) -> Any:
    """A Trainer whose loader is ``batches`` (in memory)."""
    from facebone.train import components
    from facebone.train.loop import Trainer

    def open_data(exp: Any, ranks: Any) -> tuple:
        from facebone.data.global_batches import GlobalBatchSampler

        total = len(batches) * exp.train.batch_size
        sampler = GlobalBatchSampler(total, exp.train.batch_size, seed=0, rank=ranks.rank,
                                     world_size=ranks.world_size)
        return MemorySet(total, classes), sampler, batches

    components.open_data = open_data
    trainer = Trainer(exp, out / "run", log=lambda m: None, progress=False, ranks=ranks)
    trainer.setup()
    return trainer


def time_facebone(trainer: Any, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds per step of ``steps`` steps of the real loop (after the ones already done)."""
    pos = trainer.state.position
    pos.epoch, pos.batch = 0, 0
    trainer.parts.total_steps = pos.step + steps
    sync(trainer.ranks.device)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    sync(trainer.ranks.device)
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def bare_loop(exp: Any, ranks: Any, batches: list, steps: int, parts: Any) -> tuple[float, float]:
    """The same arithmetic written as a plain PyTorch loop (its own copy of model and optimiser)."""
    import copy

    from facebone.train.optim import make_optimizer, make_schedule

    model, classifier, head = (copy.deepcopy(m) for m in (parts.face_model, parts.classifier, parts.head))
    if ranks.distributed:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[ranks.device.index] if ranks.device.type == "cuda" else None)
    params = [p for m in (model, classifier, head) for p in m.parameters()]
    optimizer = make_optimizer(params, exp.train)
    scheduler = make_schedule(optimizer, exp.train, 1000, 1000)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[exp.train.precision]
    scaler = torch.amp.GradScaler(ranks.device.type) if dtype is torch.float16 else None
    memory_format = torch.channels_last if exp.train.channels_last else torch.contiguous_format
    sync(ranks.device)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        images, labels = batches[i % len(batches)]
        images = images.to(ranks.device, non_blocking=True).contiguous(memory_format=memory_format)
        labels = labels.to(ranks.device, non_blocking=True)
        with torch.autocast(ranks.device.type, dtype=dtype, enabled=dtype is not None):
            embeddings = model(images)
            cosine, labels_local, norms = classifier(embeddings, labels)
            with torch.autocast(ranks.device.type, enabled=False):
                loss = classifier.cross_entropy(head(cosine, labels_local, norms), labels_local)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, exp.train.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        if i % 10 == 0:
            float(loss.detach())  # a progress line now and then
    sync(ranks.device)
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default="iresnet50")
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--batch", type=int, default=64, help="global batch")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=5, help="timed steps per round and side")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    from facebone.train import dist

    ranks = dist.setup(args.device)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        exp = experiment(args, out)
        batches = make_batches(args, ranks, max(args.steps, args.warmup))
        trainer = facebone_trainer(exp, ranks, batches, out, args.classes)
        time_facebone(trainer, args.warmup)
        bare_loop(exp, ranks, batches, args.warmup, trainer.parts)
        ours, bare = [], []
        for i in range(args.rounds):  # ABBA order: neither side always runs first
            if i % 2:
                bare.append(bare_loop(exp, ranks, batches, args.steps, trainer.parts))
                ours.append(time_facebone(trainer, args.steps))
            else:
                ours.append(time_facebone(trainer, args.steps))
                bare.append(bare_loop(exp, ranks, batches, args.steps, trainer.parts))
    wall = [o[0] for o in ours], [b[0] for b in bare]
    cpu = [o[1] for o in ours], [b[1] for b in bare]
    result = {
        "benchmark": "trainer_overhead", "backbone": args.backbone, "image_size": args.image_size,
        "global_batch": args.batch, "classes": args.classes, "precision": args.precision,
        "channels_last": args.channels_last, "processes": ranks.world_size, "device": str(ranks.device),
        "threads_per_process": args.threads, "steps_per_round": args.steps, "rounds": args.rounds,
        "facebone_s_per_step": min(wall[0]), "bare_s_per_step": min(wall[1]),
        "ratio": min(wall[0]) / min(wall[1]),
        "ratio_median": statistics.median(wall[0]) / statistics.median(wall[1]),
        "cpu_ratio": sum(cpu[0]) / sum(cpu[1]),
        "facebone_rounds_s": wall[0], "bare_rounds_s": wall[1],
        "facebone_rounds_cpu_s": cpu[0], "bare_rounds_cpu_s": cpu[1],
        "note": "ratio = best round of each (least disturbed by other load); cpu_ratio = process CPU time "
                "(this rank), summed over rounds",
    }
    if ranks.is_main:
        print(json.dumps(result, indent=2))
    dist.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
