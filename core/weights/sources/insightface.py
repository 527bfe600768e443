"""``insightface``: arcface_torch ``backbone.pth`` / ``model.pt`` (or a resume file): keys as they are."""
from __future__ import annotations

from pathlib import Path

from facebone.errors import ConfigError
from facebone.weights.sources import Imported


def read(path: Path, backbone: str | None) -> Imported:
    """A plain state dict (``module.`` prefixes removed) for the backbone named by ``--backbone``."""
    from facebone.weights.keys import read_torch_state_dict

    if not backbone:
        raise ConfigError("import-weights insightface: --backbone NAME is required (e.g. iresnet100, mobilefacenet)")
    return Imported(state=read_torch_state_dict(path), backbone=backbone)
