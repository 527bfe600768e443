"""``ibug``: ibug ``face_embedding`` checkpoints (``rtnet50``, ``iresnet18``, ``iresnet50``); key
names mapped by :func:`facebone.weights.ibug.to_facebone`."""
from __future__ import annotations

from pathlib import Path

from facebone.errors import ConfigError
from facebone.weights.sources import Imported


def read(path: Path, backbone: str | None) -> Imported:
    from facebone.weights.ibug import BACKBONES, to_facebone
    from facebone.weights.keys import read_torch_state_dict

    if not backbone:
        raise ConfigError(f"import-weights ibug: --backbone {'|'.join(BACKBONES)} is required")
    return Imported(state=to_facebone(read_torch_state_dict(path), backbone), backbone=backbone)
