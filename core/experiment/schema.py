"""The core's own experiment tables, declared like component options."""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

from facebone.plugin.options import option


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExperimentTable:
    name: str = option("", "run name (default: the experiment file's name)")
    seed: int = option(2048, "random seed for weights, data order and augmentation")
    output_dir: str = option("runs", "directory under which run directories are created")
    description: str = option("", "free text kept with the run")

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"key 'seed' must be a non-negative integer below 2**63, got {self.seed}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SynthTable:
    identities: int = option(300, "training identities to generate")
    images_per_identity: int = option(40, "images per identity")
    holdout_identities: int = option(100, "identities held out of training for the verification pairs")
    pairs: int = option(1000, "verification pairs (half same identity, half different)")
    seed: int = option(0, "seed of the generator")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DegradeTable:
    """``[data.degrade]``: random resolution degradation of training images (BTNet's stage 1)."""

    p: float = option(1.0, "probability that a training image is degraded")
    sizes: list[int] = option(default_factory=lambda: [112, 56, 28, 14, 7],
                              help="resolutions to degrade to, drawn uniformly (a size equal to image_size leaves "
                                   "the image as it is)")
    filter: Literal["bilinear", "bicubic", "area", "nearest"] = option(
        "bilinear", "resampling filter; downscaling is antialiased for bilinear/bicubic (as PIL), area averages, "
                    "nearest does not antialias")
    upsample: bool = option(True, "resize back to [data] image_size with the same filter (false: the batch stays "
                                  "at the drawn size; then one size is drawn per batch, not per image)")

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"key 'p' must be in [0, 1], got {self.p}")
        if not self.sizes or any(s < 1 for s in self.sizes):
            raise ValueError(f"key 'sizes' needs positive sizes, got {self.sizes}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataTable:
    train: str = option(help="training data: RecordIO directory (train.rec/.idx) or image folder")
    image_size: int = option(112, "side of the square network input in pixels")
    hflip: bool = option(True, "random horizontal flip during training")
    num_workers: int = option(0, "DataLoader worker processes (0: load in the main process)")
    skip_corrupt: bool = option(False, "skip unreadable records (counted and reported) instead of failing")
    resize: bool = option(False, "resize images stored at another size to image_size (else a mismatch is an error)")

    def __post_init__(self) -> None:
        if self.image_size <= 0:
            raise ValueError(f"key 'image_size' must be positive, got {self.image_size}")
        if self.num_workers < 0:
            raise ValueError(f"key 'num_workers' must be >= 0, got {self.num_workers}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainTable:
    batch_size: int = option(128, "global batch: samples per step over all processes together (each takes its share)")
    accumulate: int = option(1, "accumulate gradients over this many batches per optimiser step (effective batch "
                                "batch_size x accumulate; the schedule counts optimiser steps)")
    epochs: int = option(20, "passes over the training data")
    max_steps: int = option(0, "stop after this many steps (0: run all epochs)")
    optimizer: Literal["sgd", "adamw"] = option("sgd", "optimiser")
    lr: float = option(0.1, "peak learning rate")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(5e-4, "weight decay")
    warmup_epochs: float = option(0.0, "linear warm-up length in epochs")
    lr_schedule: Literal["poly", "cosine", "multistep", "constant"] = option(
        "poly", "decay after warm-up: poly ((1-p)^lr_power, arcface_torch), cosine, multistep (x lr_gamma at each "
                "of lr_milestones, ibug/AdaFace) or constant")
    lr_power: float = option(2.0, "power of the polynomial decay after warm-up")
    lr_milestones: tuple[float, ...] = option((), "multistep: epochs at which the lr is multiplied by lr_gamma")
    lr_gamma: float = option(0.1, "multistep: factor applied at each milestone")
    lr_step_unit: Literal["step", "epoch"] = option(
        "step", "when the schedule moves: every optimiser step, or once per epoch (the lr of an epoch is that "
                "of its first step)")
    grad_clip: float = option(5.0, "clip the global gradient norm to this (0: no clipping)")
    init_from: str = option("", "start from these weights: a run directory (its latest checkpoint) or a "
                                "checkpoint file ('': from scratch)")
    init_strict: bool = option(True, "with init_from, every model key must be present with its shape (false: "
                                     "load what matches and report the rest)")
    classifier_from: str = option("", "reuse the class centres of this run directory or checkpoint (same classes)")
    classifier_frozen: bool = option(False, "keep the classifier's centres fixed (as freeze = ['classifier.*'])")
    freeze: tuple[str, ...] = option((), "glob patterns of parameter names that do not train, e.g. "
                                          "['backbone.layer1*'] (names: warp.*, backbone.*, classifier.*, head.*, "
                                          "objective.*)")
    freeze_bn: Literal["update", "frozen"] = option("frozen", "batch-norm statistics of fully frozen batch-norm "
                                                              "layers: keep updating them, or hold them (eval mode)")
    precision: Literal["fp32", "bf16", "fp16"] = option("fp32", "autocast precision (fp16 on CUDA only)")
    checkpoint_every: int = option(0, "also save a checkpoint every N steps (0: only at the end)")
    keep_last: int = option(0, "keep only the newest N step checkpoints (0: keep them all)")
    max_nonfinite: int = option(10, "stop the run after this many consecutive non-finite losses (each one skips "
                                    "its step)")
    channels_last: bool = option(False, "train in channels-last memory format (faster on many GPUs and CPUs)")
    eval_every: int = option(0, "run the evaluators every N steps during training (0: only at the end)")
    log_every: int = option(10, "log loss and learning rate to TensorBoard every N steps")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "where to train (auto: CUDA if available)")
    deterministic: bool = option(True, "deterministic algorithms (bit-identical reruns on CPU)")
    num_threads: int = option(0, "CPU threads for torch (0: torch's default)")

    def __post_init__(self) -> None:
        for key in ("lr", "momentum", "weight_decay", "warmup_epochs", "lr_power", "grad_clip"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"key '{key}' must be a finite number, got {getattr(self, key)}")
        for key in ("batch_size", "epochs", "accumulate", "max_nonfinite"):
            if getattr(self, key) <= 0:
                raise ValueError(f"key '{key}' must be positive, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ValueError(f"key 'lr' must be positive, got {self.lr}")
        for key in ("max_steps", "warmup_epochs", "checkpoint_every", "eval_every", "num_threads", "grad_clip",
                    "weight_decay", "momentum", "keep_last"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}' must be >= 0, got {getattr(self, key)}")
        if self.log_every <= 0:
            raise ValueError(f"key 'log_every' must be positive (log every N steps), got {self.log_every}")
        if list(self.lr_milestones) != sorted(self.lr_milestones) or any(m <= 0 for m in self.lr_milestones):
            raise ValueError(f"key 'lr_milestones' must be positive epochs in increasing order, got "
                             f"{list(self.lr_milestones)}")
        if self.lr_schedule == "multistep" and not self.lr_milestones:
            raise ValueError("key 'lr_milestones' is needed by lr_schedule = 'multistep' (e.g. [10, 18, 22])")
        if not 0 < self.lr_gamma <= 1:
            raise ValueError(f"key 'lr_gamma' must be in (0, 1], got {self.lr_gamma}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassifierTable:
    type: Literal["full", "partial_fc"] = option("full", "full: softmax over every class; partial_fc: over the "
                                                         "batch's classes plus sampled negatives (sample_rate)")
    sample_rate: float = option(1.0, "partial_fc: share of each rank's classes scored per step, in (0, 1] "
                                     "(every positive is always kept)")
    subcenters: int = option(1, "centres per class K; a class scores the max over its K centres (sub-center)")

    def __post_init__(self) -> None:
        if not 0 < self.sample_rate <= 1:
            raise ValueError(f"key 'sample_rate' must be in (0, 1], got {self.sample_rate}")
        if self.type == "full" and self.sample_rate != 1:
            raise ValueError(f"key 'sample_rate' = {self.sample_rate} needs type = 'partial_fc' "
                             "(type 'full' scores every class)")
        if self.subcenters < 1:
            raise ValueError(f"key 'subcenters' must be >= 1, got {self.subcenters}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmbedTable:
    batch_size: int = option(64, "images per forward pass when embedding")
    flip: bool = option(True, "flip test: add the embedding of the mirrored image")
    precision: Literal["fp32", "bf16", "fp16"] = option(
        "fp32", "embedding precision (bf16, fp16: a copy with batch norm folded and weights in that precision)")
    channels_last: bool = option(False, "channels-last memory format (faster on many CPUs and GPUs)")
    compile: bool = option(False, "torch.compile with frozen weights (tens of seconds to compile; pays off on "
                                  "large sets such as IJB-C)")


CORE_TABLES = {
    "experiment": ExperimentTable,
    "data": DataTable,
    "train": TrainTable,
    "classifier": ClassifierTable,
    "embed": EmbedTable,
}
COMPONENT_TABLES = {"backbone": "backbone", "warp": "warp", "head": "head", "objective": "objective",
                    "eval": "evaluator"}
DEFAULT_TYPES = {"warp": "cartesian", "head": "arcface", "objective": "classification"}
"""Component tables that may be left out, and the type they then get."""
