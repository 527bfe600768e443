"""Frozen teachers for objectives: a trained model loaded from a run directory or checkpoint.

The teacher's architecture comes from its run's resolved ``config.toml`` (a checkpoint inside
``RUN/checkpoints/`` finds its run), or, for a bare backbone file written by facebone, from the
file's metadata. Its parameters never train and it stays in eval mode, whatever mode the
student is put in.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facebone.errors import DataError


class FrozenTeacher(nn.Module):
    """A model that is always in eval mode and never records gradients; ``image_size`` is its input side."""

    def __init__(self, model: nn.Module, image_size: int, source: str):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.image_size = image_size
        self.source = source

    def train(self, mode: bool = True) -> "FrozenTeacher":
        self.training = False
        self.model.eval()
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor, *args: Any) -> torch.Tensor:
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = torch.nn.functional.interpolate(images, size=(self.image_size, self.image_size),
                                                     mode="bilinear", align_corners=False, antialias=True)
        return self.model(images, *args)


def _run_of(checkpoint: Path) -> Path | None:
    if checkpoint.parent.name == "checkpoints" and (checkpoint.parent.parent / "config.toml").is_file():
        return checkpoint.parent.parent
    return None


def load_teacher(source: str, *, key: str = "[objective] teacher", plugins: Any = None) -> FrozenTeacher:
    """The model of run directory or checkpoint ``source``, weights loaded strictly, frozen."""
    from facebone.experiment.config import load_experiment
    from facebone.model.build import build_model
    from facebone.rundir import RunDir
    from facebone.train.init import compare_init, resolve_checkpoint

    path = Path(source).expanduser()
    checkpoint = resolve_checkpoint(path, key)
    run = path if path.is_dir() else _run_of(path)
    if run is not None:
        if not RunDir(run).resolved.is_file():
            raise DataError(f"{key}: {run} is not a facebone run directory (no {RunDir(run).resolved.name})")
        exp = load_experiment(RunDir(run).resolved, plugins=plugins, check_paths=False)
        model, size, name = build_model(exp), exp.data.image_size, exp.backbone.type
    else:
        model, size, name = _bare_backbone_model(checkpoint, key, plugins)
    _, state = compare_init(model.state_dict(), checkpoint, backbone=name, strict=True, where=key)
    model.load_state_dict(state, strict=False)  # compare_init checked every key the model needs
    return FrozenTeacher(model, size, str(checkpoint))


def _bare_backbone_model(checkpoint: Path, key: str, plugins: Any) -> tuple[nn.Module, int, str]:
    """Cartesian warp + the backbone a ``facebone-backbone`` safetensors file names."""
    from facebone.model.build import build_backbone
    from facebone.model.face_model import FaceModel
    from facebone.plugin.build import build_component
    from facebone.plugin.discovery import get_plugins
    from facebone.plugin.options import build_options
    from facebone.weights.checkpoint import read_checkpoint

    _, meta = read_checkpoint(checkpoint) if checkpoint.suffix == ".safetensors" else ({}, {})
    if meta.get("format") != "facebone-backbone":
        raise DataError(f"{key}: {checkpoint} does not say which model it holds; give the teacher's run directory")
    size = int(meta.get("image_size", 112))
    backbone = build_backbone(meta["backbone"], json.loads(meta.get("options", "{}")),
                              embedding_size=int(meta["embedding_size"]), image_size=size, plugins=plugins)
    warp_comp = (plugins or get_plugins()).get("warp", "cartesian")
    options, _ = build_options(warp_comp.options, {}, "warp")
    warp = build_component(warp_comp, options, image_size=size)
    return FaceModel(warp, backbone), size, meta["backbone"]
