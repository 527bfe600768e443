"""The training loop: warp -> backbone -> classifier -> margin head -> cross-entropy (+ head terms)."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from facebone import __version__
from facebone.weights.checkpoint import save_checkpoint
from facebone.errors import ConfigError
from facebone.eval.runner import run_evaluators
from facebone.eval.fastpath import autocast
from facebone.model.build import build_model
from facebone.model.face_model import FaceModel
from facebone.train.classifier import Classifier
from facebone.train.optim import make_optimizer, schedule_lambda
from facebone.train.runtime import resolve_device, seed_everything
from facebone.train.watch import LossWatch
from facebone.progress import Progress
from facebone.rundir import RunDir


class Trainer:
    """Trains an experiment's model into ``run_dir``; :meth:`fit` returns the final metrics."""

    def __init__(self, exp: Any, run_dir: RunDir | Path, *, log: Callable[[str], None] = print, progress: bool = True):
        self.exp = exp
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.run_dir = self.run.path
        self.log = log
        self.show_progress = progress
        self.device = resolve_device(exp.train.device)
        if exp.train.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("[train] precision = 'fp16' needs CUDA; use 'bf16' or 'fp32' on CPU")
        if exp.train.num_threads > 0:
            torch.set_num_threads(exp.train.num_threads)

    def _data(self) -> tuple[Any, Any]:
        from facebone.data import make_loader, open_training_set
        from facebone.data.checks import check_training_set

        exp = self.exp
        dataset = open_training_set(exp.data.train, image_size=exp.data.image_size, hflip=exp.data.hflip,
                                    skip_corrupt=exp.data.skip_corrupt)
        for note in check_training_set(dataset, exp):  # size mismatch refused; skipped files, wrong property
            self.log(note)
        if len(dataset) < exp.train.batch_size:
            raise ConfigError(f"{exp.source} [train] batch_size: {exp.train.batch_size} is larger than the "
                              f"{len(dataset)} training images in {exp.data.train}")
        loader = make_loader(dataset, batch_size=exp.train.batch_size, shuffle=True,
                             num_workers=exp.data.num_workers, seed=exp.experiment.seed, drop_last=True,
                             pin_memory=self.device.type == "cuda")
        return dataset, loader

    def fit(self) -> dict[str, float]:
        exp, train = self.exp, self.exp.train
        seed_everything(exp.experiment.seed, train.deterministic)
        dataset, loader = self._data()
        model = build_model(exp).to(self.device)
        classifier = Classifier(dataset.num_classes, exp.embedding_size).to(self.device)
        head = exp.head.build(num_classes=dataset.num_classes, embedding_size=exp.embedding_size,
                              seed=exp.experiment.seed).to(self.device)
        params = [p for m in (model, classifier, head) for p in m.parameters() if p.requires_grad]
        optimizer = make_optimizer(params, train)
        steps_per_epoch = len(loader)
        total = steps_per_epoch * train.epochs
        if train.max_steps > 0:
            total = min(total, train.max_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_lambda(train, steps_per_epoch, total))
        scaler = torch.amp.GradScaler("cuda", enabled=train.precision == "fp16")
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.run.tensorboard))
        self.log(f"training {exp.backbone.type} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params) "
                 f"on {len(dataset)} images of {dataset.num_classes} identities, {total} steps "
                 f"of {train.batch_size} on {self.device} ({train.precision})")
        step = 0
        metrics: dict[str, float] = {}
        modules = {"model": model, "classifier": classifier, "head": head}
        model.train()
        progress = Progress(total * train.batch_size, "train", unit="samples", enabled=self.show_progress)
        watch = LossWatch(steps_per_epoch, total)
        try:
            epoch = 0
            while step < total:
                if hasattr(loader.sampler, "set_epoch"):
                    loader.sampler.set_epoch(epoch)
                for images, labels in loader:
                    loss = self._step(model, classifier, head, optimizer, scaler, images, labels)
                    scheduler.step()
                    step += 1
                    lr = optimizer.param_groups[0]["lr"]
                    progress.update(len(labels), loss=loss, lr=lr, epoch=epoch)
                    if (warning := watch.observe(step, loss)) is not None:
                        watch.report(warning, self.log, self.run, progress)
                    if not math.isfinite(loss):
                        raise ConfigError(f"training diverged at step {step} (loss {loss}); lower [train] lr "
                                          "or raise warmup_epochs")
                    if step % train.log_every == 0 or step == total:
                        writer.add_scalar("train/loss", loss, step)
                        writer.add_scalar("train/lr", lr, step)
                        writer.add_scalar("train/samples_per_s", progress.rate, step)
                    if train.checkpoint_every and step % train.checkpoint_every == 0 and step < total:
                        self._save(modules, step, epoch, f"step_{step:07d}.safetensors", dataset.num_classes)
                    if train.eval_every and step % train.eval_every == 0 and step < total:
                        metrics = self._evaluate(model, step, None, writer)
                    if step >= total:
                        break
                epoch += 1
            if hasattr(dataset, "corrupt_count") and dataset.corrupt_count:
                self.log(f"skipped {dataset.corrupt_count} corrupt records")
        finally:
            progress.close()
        path = self._save(modules, step, epoch, RunDir.LAST, dataset.num_classes)
        metrics = self._evaluate(model, step, str(path.relative_to(self.run_dir)), writer)
        writer.close()
        return metrics

    def _step(self, model: FaceModel, classifier: Classifier, head: nn.Module, optimizer: torch.optim.Optimizer,
              scaler: Any, images: torch.Tensor, labels: torch.Tensor) -> float:
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True).long()
        with autocast(self.exp.train.precision, self.device):
            embeddings = model(images)
        cosine, norms = classifier(embeddings.float())
        logits = head(cosine, labels, norms)
        loss = F.cross_entropy(logits.float(), labels)
        extra = getattr(head, "loss_terms", None)
        if extra is not None:
            loss = loss + sum(extra(norms).values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.exp.train.grad_clip > 0:
            scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            nn.utils.clip_grad_norm_(params, self.exp.train.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        return float(loss.detach())

    def _save(self, modules: dict[str, nn.Module], step: int, epoch: int, name: str, num_classes: int) -> Path:
        meta = {"step": step, "epoch": epoch, "experiment": self.exp.name, "facebone": __version__,
                "backbone": self.exp.backbone.type, "num_classes": num_classes,
                "embedding_size": self.exp.embedding_size, "saved": time.strftime("%Y-%m-%dT%H:%M:%S")}
        return save_checkpoint(self.run.checkpoints / name, modules, meta)

    def _evaluate(self, model: nn.Module, step: int, checkpoint: str | None, writer: Any) -> dict[str, float]:
        metrics = run_evaluators(self.exp, model, self.run, self.device, step=step, checkpoint=checkpoint,
                                 log=self.log)
        for key, value in metrics.items():
            writer.add_scalar(f"eval/{key}", value, step)
        model.train()
        return metrics
